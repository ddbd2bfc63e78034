"""The Python API's arguments checked as the command line's are: a wrong name, type or value is one DlxError line
naming the argument, not a TypeError from deep inside (`run.predict(3)`, `run.generate(max_new_tokens=2.5)`), and
never a value read as something else (`run.explain("digit.png")` explained the files 'd', 'i', 'g', ...)."""
from __future__ import annotations

import dataclasses
import inspect
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from dlx.errors import DlxError, did_you_mean
from dlx.schema import problems

T = TypeVar("T")


def path(value: Any, what: str) -> Path:
    """A str or os.PathLike argument as a Path."""
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    raise DlxError(f"{what}: expected a path (a str or pathlib.Path), got {type(value).__name__} {value!r:.40}")


def paths(value: Any, what: str) -> list[Any]:
    """One path or a list of them (an int stays an int: a row number), as a list."""
    if isinstance(value, (str, os.PathLike)):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise DlxError(f"{what}: expected a path or a list of them, got {type(value).__name__} {value!r:.40}")
    return list(value)


def options(cls: type[T], given: dict[str, Any], what: str, bounds: dict[str, Any] | None = None) -> T:
    """The dataclass `cls` from keyword arguments, each name known and each value of its field's type (pydantic, as
    a --set value is read: "3" is the int 3, 2.5 is no int) and within `bounds` ({'top_k': {'ge': 1}})."""
    known = [f.name for f in dataclasses.fields(cls)]
    for name in given:
        if name not in known:
            raise DlxError(f"{what}: unknown option '{name}'{did_you_mean(name, known)}")
    try:
        built = TypeAdapter(cls).validate_python(given)
    except ValidationError as e:
        raise DlxError(f"{what}: {problems(e.errors())[0]}") from None
    for name, value in given.items():  # pydantic reads True as 1 where a number belongs
        if isinstance(value, bool) and not isinstance(getattr(built, name), bool):
            raise DlxError(f"{what}: {name}: {value!r} where a number belongs")
    for name, limits in (bounds or {}).items():
        value = getattr(built, name)
        if value is not None and (value < limits.get("ge", value) or value > limits.get("le", value)):
            low, high = limits.get("ge"), limits.get("le")
            between = f"{low} or more" if high is None else f"between {low} and {high}"
            raise DlxError(f"{what}: {name}={value!r}: give {between}")
    return built


def keywords(function: Any, given: dict[str, Any], what: str, taken: tuple[str, ...] = ()) -> None:
    """Refuse a keyword argument `function` does not take (or one the API fills in itself: `taken`)."""
    known = [name for name in inspect.signature(function).parameters if name not in taken]
    for name in given:
        if name not in known:
            raise DlxError(f"{what}: unknown option '{name}'{did_you_mean(name, known)}")
