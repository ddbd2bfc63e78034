"""The search space of a sweep: dotted config paths -> value ranges -> `--set`-style override strings.

A sweep file's `space:` maps a config path to one of

    [32, 64, "128-64"]                              a list of values (categorical)
    {values: [...]}                                 the same, spelled out
    {low: 1e-4, high: 0.1, log: true}               a float range (int when low and high are ints,
    {low: 16, high: 128, step: 16}                  or with type: int); step makes it discrete
    {grid: geometric, low: 0.001, high: 0.1, factor: 2}
                                                    the course's LR grid: 0.001, 0.002, ... <= 0.1

A sampled value becomes `path=value` and goes through dlx.config.apply_overrides, exactly like
`dlx train --set path=value`: one path from a string to a value.
"""
from __future__ import annotations

import itertools
import math
from typing import Annotated, Any, Literal

import optuna
import pydantic
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from pydantic import Field

from dlx import limits, schema
from dlx.config import render
from dlx.errors import ConfigError

Scalar = bool | int | float | str


class _Param(schema.Schema):
    def problems(self, path: str) -> list[str]:
        return []

    def count(self) -> int | float | None:
        """How many values `grid` lists, counted without listing them; None for a continuous range."""
        return None

    def grid(self) -> list[Scalar] | None:
        """Every value, when the parameter is discrete; None for a continuous range."""
        return None

    def corners(self) -> list[Scalar]:
        """The values checked against the config before any trial: the ends of a range, every choice."""
        return self.grid() or []


class Choice(_Param):
    values: Annotated[list[Scalar], Field(min_length=1)]

    def problems(self, path: str) -> list[str]:
        return [f"{path}: the values repeat"] if len({(type(v), v) for v in self.values}) < len(self.values) else []

    def distribution(self) -> BaseDistribution:
        return CategoricalDistribution(self.values)

    def count(self) -> int:
        return len(self.values)

    def grid(self) -> list[Scalar]:
        return list(self.values)


class Range(_Param):
    low: int | float
    high: int | float
    log: bool = False
    step: Annotated[int | float, Field(gt=0)] | None = None
    type: Literal["float", "int"] | None = None  # default: int when low and high are both ints

    @property
    def is_int(self) -> bool:
        return self.type == "int" or (self.type is None and isinstance(self.low, int) and isinstance(self.high, int))

    def problems(self, path: str) -> list[str]:
        problems = []
        if not self.low < self.high:
            problems.append(f"{path}: empty or inverted range: low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            problems.append(f"{path}: a log range needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            problems.append(f"{path}: a range is either log or stepped, not both")
        if self.is_int and not all(float(v).is_integer() for v in (self.low, self.high, self.step or 1)):
            problems.append(f"{path}: an int range needs whole low, high and step")
        return problems

    def distribution(self) -> BaseDistribution:
        if self.is_int:
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def count(self) -> int | float | None:
        if self.is_int:
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1
        return None if self.step is None else limits.steps(self.low, self.high, self.step)

    def grid(self) -> list[Scalar] | None:
        if self.is_int:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            return None
        return [_tidy(self.low + i * self.step) for i in range(self.count())]

    def corners(self) -> list[Scalar]:
        return [int(self.low), int(self.high)] if self.is_int else [float(self.low), float(self.high)]


class Geometric(_Param):
    """The course's learning-rate search: from low, multiplying by factor, while <= high."""

    grid_: Literal["geometric"] = Field(alias="grid")
    low: Annotated[float, Field(gt=0)]
    high: float
    factor: Annotated[float, Field(gt=1)] = 2.0

    def problems(self, path: str) -> list[str]:
        if not self.low < self.high:
            return [f"{path}: empty or inverted range: low {self.low} must be below high {self.high}"]
        # every search lists a geometric grid's values (they are its choices), so their number is bounded here
        too_many = limits.problem(f"{path}: factor {self.factor} from {self.low:g} to {self.high:g}", self.count(),
                                  limits.GRID_VALUES, "values")
        return [too_many] if too_many else []

    def distribution(self) -> BaseDistribution:
        return CategoricalDistribution(self.grid())

    def count(self) -> int | float:
        return limits.steps(0.0, math.log(self.high / self.low), math.log(self.factor))

    def grid(self) -> list[Scalar]:
        return [_tidy(self.low * self.factor**k) for k in range(self.count())]


Param = Choice | Range | Geometric


def _tidy(x: float) -> float:
    """0.30000000000000004 -> 0.3: grid values print and compare as written."""
    return float(f"{x:.12g}")


def _parse_one(path: str, raw: Any) -> tuple[Param | None, list[str]]:
    if isinstance(raw, list):
        raw = {"values": raw}
    if not isinstance(raw, dict):
        return None, [f"space.{path}: expected a list of values or a mapping with low/high, values or grid, got {raw!r}"]
    kind = Geometric if "grid" in raw else Choice if "values" in raw else Range
    try:
        param = kind.model_validate(raw)
    except pydantic.ValidationError as e:
        keys = [field.alias or name for name, field in kind.model_fields.items()]
        return None, schema.problems(e.errors(), f"space.{path}", lambda loc: keys)
    found = param.problems(f"space.{path}")
    return (None if found else param), found


def checked(raw: Any) -> tuple[dict[str, Param], list[str]]:
    """The `space:` mapping -> ({dotted path: parameter} of the well-formed ones, every problem)."""
    if not isinstance(raw, dict) or not raw:
        return {}, ["space: a mapping of dotted config paths to ranges or lists, e.g. optimizer.lr: {low: 1e-4, high: 0.1, log: true}"]
    space, problems = {}, []
    for path, spec in raw.items():
        param, found = _parse_one(str(path), spec)
        problems += found
        if param is not None:
            space[str(path)] = param
    return space, problems


def parse(raw: Any) -> dict[str, Param]:
    """The `space:` mapping -> {dotted path: parameter}; raises ConfigError listing every problem."""
    space, problems = checked(raw)
    if problems:
        raise ConfigError(problems)
    return space


def continuous(space: dict[str, Param]) -> list[str]:
    """Paths that a grid cannot enumerate."""
    return [path for path, param in space.items() if param.count() is None]


def grid_size(space: dict[str, Param]) -> int | float:
    """How many points `grid_points` lists, counted without listing them (every parameter discrete)."""
    return math.prod(param.count() for param in space.values())


def grid_points(space: dict[str, Param]) -> list[dict[str, Scalar]]:
    """The full grid, in order: the first path varies slowest."""
    paths = list(space)
    return [dict(zip(paths, values)) for values in itertools.product(*(space[p].grid() for p in paths))]


def corner_values(space: dict[str, Param]) -> list[dict[str, Scalar]]:
    """A few full assignments that together use every corner of every parameter once."""
    first = {path: param.corners()[0] for path, param in space.items()}
    assignments = [first]
    for path, param in space.items():
        assignments += [{**first, path: value} for value in param.corners()[1:]]
    return assignments


def suggest(trial: optuna.Trial, space: dict[str, Param]) -> dict[str, Scalar]:
    """Ask the trial for a value of every path (fixed values of an enqueued trial come back as they are)."""
    values: dict[str, Scalar] = {}
    for path, param in space.items():
        dist = param.distribution()
        if isinstance(dist, CategoricalDistribution):
            values[path] = trial.suggest_categorical(path, dist.choices)
        elif isinstance(dist, IntDistribution):
            values[path] = trial.suggest_int(path, dist.low, dist.high, step=dist.step, log=dist.log)
        else:
            values[path] = trial.suggest_float(path, dist.low, dist.high, step=dist.step, log=dist.log)
    return values


def short(value: Scalar) -> str:
    """A value as narrow as a progress line or a table cell needs: floats to 4 significant digits, strings unquoted."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def overrides(values: dict[str, Scalar]) -> list[str]:
    """{'optimizer.lr': 0.01} -> ['optimizer.lr=0.01']; a component's name first, since naming
    another entry drops the old entry's settings."""
    ordered = sorted(values.items(), key=lambda kv: not kv[0].endswith(".name"))
    return [f"{path}={render(value)}" for path, value in ordered]
