"""Pydantic models as dlx reads a user's file: unknown keys refused, a boolean never read as a number,
and every validation error as one 'dotted.path: message' line."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from dlx.errors import did_you_mean


def _booleans_read_as_numbers(raw: Any, result: Any, at: tuple = ()) -> list[tuple]:
    """Where `raw` held true/false and the validated `result` holds a number in its place."""
    if isinstance(raw, bool):
        return [at] if isinstance(result, int | float) and not isinstance(result, bool) else []
    if isinstance(raw, list | tuple) and isinstance(result, list | tuple) and len(raw) == len(result):
        return [p for i, (r, v) in enumerate(zip(raw, result)) for p in _booleans_read_as_numbers(r, v, (*at, i))]
    if isinstance(raw, dict):
        values = result if isinstance(result, dict) else vars(result) if isinstance(result, BaseModel) else {}
        return [p for key, r in raw.items() if key in values for p in _booleans_read_as_numbers(r, values[key], (*at, key))]
    return []


class Schema(BaseModel):
    """A section of a file a user writes. Pydantic's lax mode reads true as 1 and false as 0, so
    `epochs: true` trained one epoch; here a boolean is refused wherever the field takes no boolean."""

    model_config = ConfigDict(extra="forbid")

    @pydantic.field_validator("*", mode="wrap")
    @classmethod
    def _no_boolean_as_number(cls, value: Any, handler: Callable[[Any], Any]) -> Any:
        result = handler(value)
        if found := _booleans_read_as_numbers(value, result):
            raise pydantic.ValidationError.from_exception_data(cls.__name__, [
                InitErrorDetails(type=PydanticCustomError("bool_as_number", "expected a number, got {value}",
                                                          {"value": str(_at(value, loc)).lower()}),
                                 loc=loc, input=_at(value, loc))
                for loc in found])
        return result


def _at(value: Any, loc: tuple) -> Any:
    for key in loc:
        value = value[key]
    return value


def problems(errors: Iterable[ErrorDetails], prefix: str = "",
             known_keys: Callable[[tuple], Iterable[str]] = lambda loc: ()) -> list[str]:
    """One line per error of a ValidationError's errors(), '<prefix>.<loc>: <message>'; an unknown key
    gets a did-you-mean among `known_keys(loc of its section)`."""
    lines = []
    for err in errors:
        path = ".".join([prefix, *map(str, err["loc"])] if prefix else map(str, err["loc"])) or "config"
        if err["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key{did_you_mean(str(err['loc'][-1]), known_keys(err['loc'][:-1]))}")
        elif err["type"] == "missing":
            lines.append(f"{path}: missing (required)")
        else:
            message = " ".join(err["msg"].split())  # one line, whatever the validator wrote
            lines.append(f"{path}: {message[:1].lower()}{message[1:]}")
    return lines
