"""Paths as users type them: `~` and `~user` expanded, and one that cannot be is one line, not pathlib's traceback."""
from __future__ import annotations

from pathlib import Path

from dlx.errors import DlxError


def expanded(text: str, what: str) -> Path:
    """`text` as a path with `~` or `~user` expanded; `what` names the setting in the one line for a `~user` that is
    no user here (or a `~` without a home directory)."""
    try:
        return Path(text).expanduser()
    except RuntimeError:  # pathlib: "Could not determine home directory."
        user = text.split("/", 1)[0]
        raise DlxError(f"{what}: {text}: {user} names no home directory on this machine; give the path without "
                       f"it") from None
