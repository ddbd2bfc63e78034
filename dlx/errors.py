"""Errors a user can cause. cli.py turns each into one line on stderr and exit code 2."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class DlxError(Exception):
    """A problem the user can fix: the message says what is wrong and how to fix it."""


class ConfigError(DlxError):
    """Every problem found in a config at once, each with its dotted path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class UnknownName(DlxError):
    """A registry lookup that missed, with the nearest names as a hint."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind, self.name = kind, name
        known = sorted(known)
        self.closest = closest(name, known)  # what the user most likely meant, best first
        super().__init__(f"unknown {kind} '{name}'{did_you_mean(name, known)}")


def closest(name: str, known: Iterable[str]) -> list[str]:
    return difflib.get_close_matches(str(name), sorted(known), n=3, cutoff=0.6)


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest of `known`, or a list of choices when nothing is close
    (nothing at all when there is nothing to choose from)."""
    known = sorted(known)
    close = closest(name, known)
    if not known:
        return ""
    if close:
        return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"
    if len(known) <= 12:
        return f" (choose from: {', '.join(known)})"
    return f" (see `dlx list` for the {len(known)} choices)"
