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

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from dlx import build
from dlx.config import RUN_NAME, Config, load, read_yaml
from dlx.errors import ConfigError, DlxError, did_you_mean
from dlx.metrics import higher_is_better
from dlx.sweep import space as space_mod

METHODS = ("grid", "random", "tpe", "cmaes")
PRUNERS = ("none", "median", "hyperband", "successive_halving")
DEFAULT_TRIALS = 20


class SweepFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

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

    def config(self, values: dict[str, Any], name: str, threads: int | None = None) -> Config:
        return load(self.experiment, [*self.overrides(values, threads), f"name={name}"])

    def grid(self) -> list[dict[str, Any]]:
        return space_mod.grid_points(self.space)

    def fingerprint(self) -> str:
        """Identifies what is searched, so a second machine cannot join a study with another sweep file."""
        what = self.file.model_dump(mode="json", exclude={"trials", "name"})
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def _file_problems(error: pydantic.ValidationError) -> list[str]:
    problems = []
    for err in error.errors():
        where = ".".join(map(str, err["loc"])) or "sweep"
        if err["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown key{did_you_mean(str(err['loc'][-1]), SweepFile.model_fields)}")
        else:
            problems.append(f"{where}: {err['msg'][0].lower()}{err['msg'][1:]}")
    return problems


def logged_metrics(config: Config) -> list[str]:
    """What every run logs each epoch, so what a sweep can optimise and prune on."""
    names = config.eval.metrics or build.metric_names(config, build.dataset(config).spec())
    return ["train/epoch_loss", "val/loss", *(f"val/{m}" for m in names)]


def load_sweep(path: str | Path, trials: int | None = None, epochs: int | None = None) -> Sweep:
    """Read and check a sweep file (`epochs` replaces its epochs per trial); every problem is one
    DlxError line, raised before any trial starts."""
    path = Path(path)
    try:
        file = SweepFile.model_validate({**read_yaml(path), **({"epochs": epochs} if epochs else {})})
    except pydantic.ValidationError as e:
        raise DlxError(f"{path}: {'; '.join(_file_problems(e))}") from None
    try:
        space = space_mod.parse(file.space)
    except ConfigError as e:
        raise DlxError(f"{path}: {e}") from None
    experiment = path.parent / file.experiment
    if not experiment.is_file():
        raise DlxError(f"{path}: experiment: no such file {experiment}")
    leaf = file.metric.split("/")[-1]
    direction = file.direction if file.direction != "auto" else "maximize" if higher_is_better(leaf) else "minimize"
    if file.method == "grid" and space_mod.continuous(space):
        raise DlxError(f"{path}: method grid needs discrete values, but {', '.join(space_mod.continuous(space))} "
                       f"is a continuous range: give it a step, a list of values, or {{grid: geometric, ...}}")
    sweep = Sweep(path, file, file.name or path.stem, experiment, space, direction, _trial_count(file, space, trials))
    base = _check_configs(sweep)
    if file.metric not in (known := logged_metrics(base)):
        raise DlxError(f"{path}: metric: runs never log '{file.metric}'{did_you_mean(file.metric, known)}")
    return replace(sweep, epochs=base.train.epochs)


def _check_configs(sweep: Sweep) -> Config:
    """Resolve the experiment with every corner of the space: an unknown path or a value the config
    refuses shows here, with its did-you-mean, instead of in every trial."""
    problems: list[str] = []
    configs = []
    for values in space_mod.corner_values(sweep.space):
        try:
            configs.append(sweep.config(values, sweep.name))
        except ConfigError as e:
            problems += [p for p in e.problems if p not in problems]
    if problems:
        raise DlxError(f"{sweep.path}: {'; '.join(problems)}")
    return configs[0]


def _trial_count(file: SweepFile, space: dict[str, space_mod.Param], asked: int | None) -> int:
    asked = asked or file.trials
    if file.method != "grid":
        return asked or DEFAULT_TRIALS
    size = len(space_mod.grid_points(space))
    if asked is not None and asked > size:
        raise DlxError(f"the grid has {size} points; {asked} trials would repeat some of them")
    return asked or size
