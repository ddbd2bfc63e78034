"""The sweep file: what to search, how, and for which metric; checked whole before any trial starts.

    name: digits_mlp_sweep        # the study and runs/<name>/ (default: the file's name)
    experiment: digits_mlp.yaml   # the base experiment, relative to this file
    set: [train.batch_size=32]    # fixed overrides for every trial, as with --set
    method: tpe                   # grid | random | tpe | cmaes
    pruner: hyperband             # none | median | hyperband | successive_halving
    metric: val/accuracy          # a value every run logs each epoch
    direction: auto               # maximize | minimize | auto (max for accuracy-like, min for losses)
    trials: 20                    # default: the grid's size for grid, else 20
    epochs: 10                    # per trial (default: the experiment's train.epochs)
    seed: 0                       # the samplers' seed
    space: {optimizer.lr: {low: 1e-4, high: 0.1, log: true}, ...}
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import Field

from dlx import build, limits, registry, schema
from dlx.config import RUN_NAME, Config, Note, load, parse_override, read_yaml, unheard
from dlx.errors import ConfigError, DlxError, did_you_mean
from dlx.metrics import higher_is_better, logged_keys
from dlx.sweep import space as space_mod

METHODS = ("grid", "random", "tpe", "cmaes")
PRUNERS = ("none", "median", "hyperband", "successive_halving")
DEFAULT_TRIALS = 20


class SweepFile(schema.Schema):
    name: Annotated[str, Field(pattern=RUN_NAME.pattern)] | None = None
    experiment: str
    set: list[str] = []
    method: Literal[METHODS] = "tpe"
    pruner: Literal[PRUNERS] = "none"
    metric: str
    direction: Literal["auto", "maximize", "minimize"] = "auto"
    trials: Annotated[int, Field(ge=1, le=100_000)] | None = None
    epochs: Annotated[int, Field(ge=1)] | None = None
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0
    space: dict[str, Any]


@dataclass(frozen=True)
class Sweep:
    """A checked sweep: every sampled config is known to validate, and the metric is logged."""

    path: Path
    file: SweepFile
    name: str
    experiment: Path
    space: dict[str, space_mod.Param]
    direction: str  # maximize | minimize
    trials: int
    epochs: int = 0  # per trial; the experiment's own train.epochs when the sweep file sets none

    @property
    def metric(self) -> str:
        return self.file.metric

    def overrides(self, values: dict[str, Any], threads: int | None = None) -> list[str]:
        """Everything a trial changes in the base experiment, as --set strings, in the order applied."""
        fixed = [*self.file.set, f"train.monitor={self.metric}", f"train.mode={'max' if self.direction == 'maximize' else 'min'}"]
        if self.file.epochs is not None:
            fixed.append(f"train.epochs={self.file.epochs}")
        if threads is not None:
            fixed.append(f"train.threads={threads}")
        return [*fixed, *space_mod.overrides(values)]

    def config(self, values: dict[str, Any], name: str, threads: int | None = None, note: Note = unheard) -> Config:
        return load(self.experiment, [*self.overrides(values, threads), f"name={name}"], note)

    def grid(self) -> list[dict[str, Any]]:
        return space_mod.grid_points(self.space)

    def fingerprint(self) -> str:
        """Identifies what is searched, so a second machine cannot join a study with another sweep file."""
        what = self.file.model_dump(mode="json", exclude={"trials", "name"})
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def _file(raw: dict[str, Any]) -> tuple[SweepFile | None, list[str]]:
    """The sweep file's own keys checked. With mistakes, the file without the keys at fault, so what depends
    on the others can still be checked (None when a required key is at fault)."""
    try:
        return SweepFile.model_validate(raw), []
    except pydantic.ValidationError as e:
        problems = schema.problems(e.errors(), known_keys=lambda loc: SweepFile.model_fields)
        at_fault = {err["loc"][0] for err in e.errors() if err["loc"]}
    try:
        return SweepFile.model_validate({k: v for k, v in raw.items() if k not in at_fault}), problems
    except pydantic.ValidationError:
        return None, problems


def logged_metrics(config: Config) -> list[str]:
    """What every run logs each epoch, so what a sweep can optimise and prune on."""
    objective = registry.objectives.get(config.objective.name).obj
    names = build.metric_names(config, build.dataset(config).spec())
    return logged_keys(objective.groups, objective.terms_logged, names, objective.terms_trained,
                       judged=config.eval.judge is not None)


def load_sweep(path: str | Path, trials: int | None = None, epochs: int | None = None, note: Note = unheard) -> Sweep:
    """Read and check a sweep file (`epochs` replaces its epochs per trial); every problem found is in one
    DlxError line, raised before any trial starts. `note` hears of settings a space's entry names drop."""
    path = Path(path)
    raw = {**read_yaml(path), **({"epochs": epochs} if epochs else {})}
    file, problems = _file(raw)
    space, found = space_mod.checked(raw["space"]) if "space" in raw else ({}, [])
    problems += found
    if file is None:
        raise DlxError(f"{path}: {'; '.join(problems)}")
    for text in file.set:  # each fixed override read alone, so one that cannot be read hides no other mistake
        try:
            parse_override(text)
        except DlxError as e:
            problems.append(str(e))
            file = file.model_copy(update={"set": [s for s in file.set if s != text]})
    experiment = path.parent / file.experiment
    if not experiment.is_file():
        problems.append(f"experiment: no such file {experiment}")
    count = _trial_count(file, space, trials, problems) if not found else 0  # a grid's size is that of the whole space
    leaf = file.metric.split("/")[-1]
    direction = file.direction if file.direction != "auto" else "maximize" if higher_is_better(leaf) else "minimize"
    sweep = Sweep(path, file, file.name or path.stem, experiment, space, direction, count)
    base = None
    if experiment.is_file():
        base = _check_configs(sweep, problems, note)
    if base is not None and file.metric not in (known := logged_metrics(base)):
        problems.append(f"metric: runs never log '{file.metric}'{did_you_mean(file.metric, known)}")
    if problems:
        raise DlxError(f"{path}: {'; '.join(problems)}")
    return replace(sweep, epochs=base.train.epochs)


def _check_configs(sweep: Sweep, problems: list[str], note: Note) -> Config | None:
    """Resolve the experiment with every corner of the space: an unknown path or a value the config
    refuses shows here, with its did-you-mean, instead of in every trial. Adds what it finds to
    `problems`; returns the first config that resolved."""
    configs, notes = [], []
    for values in space_mod.corner_values(sweep.space):
        try:
            configs.append(sweep.config(values, sweep.name, note=notes.append))
        except ConfigError as e:
            problems += [p for p in e.problems if p not in problems]
        except DlxError as e:  # the experiment's file, or a `set:` override, that cannot be read
            problems += [str(e)] if str(e) not in problems else []
    for text in dict.fromkeys(notes):
        note(text)
    if not configs:  # every corner failed: the experiment with the fixed overrides alone, for the metric check
        with contextlib.suppress(DlxError):
            configs.append(sweep.config({}, sweep.name))
    return configs[0] if configs else None


def _trial_count(file: SweepFile, space: dict[str, space_mod.Param], asked: int | None, problems: list[str]) -> int:
    asked = asked or file.trials
    if file.method != "grid":
        return asked or DEFAULT_TRIALS
    if space_mod.continuous(space):
        problems.append(f"method grid needs discrete values, but {', '.join(space_mod.continuous(space))} is a "
                        f"continuous range: give it a step, a list of values, or {{grid: geometric, ...}}")
        return 0
    size = space_mod.grid_size(space)
    if too_many := limits.problem("method grid", size, limits.GRID_VALUES, "points"):
        problems.append(too_many)
        return 0
    if asked is not None and asked > size:
        problems.append(f"the grid has {size} points; {asked} trials would repeat some of them")
    return asked or size
