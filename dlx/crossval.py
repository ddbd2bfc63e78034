"""Runs made of member runs: k-fold cross-validation (`dlx train EXP.yaml --folds K`) and bagging (`--bagging K`)
train one child run per member inside a parent folder.

runs/<name>/
  config.yaml        the experiment's resolved config, without a member: `dlx train runs/<name>/config.yaml --folds K`
  cv_summary.json    each metric's mean and standard deviation over the members, per split (bagging_summary.json)
  fold-1/ ... fold-K/  ordinary runs (bag-1/ ... bag-K/); each one's config.yaml holds its `data.fold: {k: K, index: i}`
                     (`data.bag`), so `dlx train runs/<name>/fold-2/config.yaml` reproduces that member alone

The member is a key of the data section, not a runtime argument, so every child's saved config still reproduces
it. The test split is the same for every member (and for a run without members). Fold i of the examples outside
the test split is fold child i's val split; bag i trains on a bootstrap resample of the train split and keeps the
val split, so the bags make a committee on val and test (`dlx evaluate runs/<name>/bag-* --ensemble vote`).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from dlx import tables

from dlx.config import Config, apply_overrides, validate
from dlx.config import load as load_config
from dlx.config import dump as dump_config
from dlx.errors import DlxError
from dlx.atomic import write_atomic
from dlx.run import lock
from dlx.run.folder import Run
from dlx.train.interrupts import Interrupted


@dataclass(frozen=True)
class Scheme:
    """One way of making member runs: its option, its data key (and child folder prefix), its summary file."""

    option: str  # --folds
    kind: str  # what the parent is: cross-validation
    key: str  # data.<key> holds {k, index}; the children are <key>-1 ... <key>-K
    summary: str  # the parent's summary file
    count: str  # the summary's key for the number of members, as the runs table shows it: "3 folds"
    title: str  # what the summary table says it is
    status: str  # the parent's status in the runs table once every member has trained
    needs: str  # why one member is not enough

    def child(self, index: int) -> str:
        return f"{self.key}-{index}"


FOLDS = Scheme("--folds", "cross-validation", "fold", "cv_summary.json", "folds", "{k}-fold cross-validation", "cross-validated",
               "cross-validation needs at least 2 folds (the course uses 5 or 10)")
BAGGING = Scheme("--bagging", "bagging", "bag", "bagging_summary.json", "bags",
                 "bagging: {k} members, each trained on a bootstrap resample of the train split", "bagged",
                 "a bagging committee needs at least 2 members")
SCHEMES = (FOLDS, BAGGING)


def member_config(config: Config, scheme: Scheme, k: int, index: int) -> Config:
    return validate(apply_overrides(config.to_dict(), [f"data.{scheme.key}={{k: {k}, index: {index}}}"]))


def scheme_of(path: Path) -> Scheme | None:
    """The scheme of a parent folder (by its summary or its first member), or None for any other folder."""
    if not (path / "config.yaml").is_file():
        return None
    return next((s for s in SCHEMES if (path / s.summary).is_file() or (path / s.child(1)).is_dir()), None)


def is_parent(path: Path) -> bool:
    return scheme_of(path) is not None


def train(config: Config, k: int, runs_root: Path, quiet: bool = False, console: Console | None = None,
          scheme: Scheme = FOLDS) -> tuple[Run, dict]:
    """Train the k members one after another, then write and return the summary over them."""
    for other in SCHEMES:
        if getattr(config.data, other.key) is not None:
            raise DlxError(f"{scheme.option}: this config is already one member (data.{other.key} is set); train its "
                           f"parent's config.yaml")
    if k < 2:
        raise DlxError(f"{scheme.option} {k}: {scheme.needs}")
    members = [member_config(config, scheme, k, i) for i in range(1, k + 1)]  # all validated before anything is written
    parent = Run.create(runs_root, config.name)
    write_atomic(parent.config_path, dump_config(config.model_copy(update={"name": parent.name})).encode())
    parent.path.joinpath("checkpoints").rmdir()  # a parent holds runs, not weights
    try:
        return parent, _train_members(parent, scheme, members, quiet, console)
    except DlxError:
        if not (parent.path / scheme.child(1)).exists():  # the config cannot be built: leave nothing behind
            parent.config_path.unlink()
            (parent.path / lock.NAME).unlink()
            parent.path.rmdir()
        raise
    finally:
        parent.close()  # its lock, held while the members train: `dlx runs rm` and a second --resume wait for the end


def resume(parent_path: str | Path, quiet: bool = False, console: Console | None = None) -> tuple[Run, dict]:
    """Continue: finished members stay, a stopped member resumes, missing members are trained."""
    parent = Run(Path(parent_path)).claim("resume it")
    try:
        scheme = scheme_of(parent.path)
        first = load_config(parent.path / scheme.child(1) / "config.yaml")
        k = getattr(first.data, scheme.key).k
        config = load_config(parent.config_path)
        return parent, _train_members(parent, scheme, [member_config(config, scheme, k, i) for i in range(1, k + 1)],
                                      quiet, console)
    finally:
        parent.close()


def _train_members(parent: Run, scheme: Scheme, members: list[Config], quiet: bool,
                   console: Console | None) -> dict[str, Any]:
    from dlx.train import loop  # the training machinery only when training: `dlx runs` reads is_parent

    console = console or Console(stderr=True)
    summaries = []
    for member in members:
        place = getattr(member.data, scheme.key)
        name = scheme.child(place.index)
        path = parent.path / name
        which = f"{scheme.key} {place.index}/{place.k} ({path})"
        try:
            if (path / "summary.json").is_file():
                console.print(f"{which}: already trained", highlight=False, soft_wrap=True)
                summaries.append(Run(path).read_json("summary.json"))
            elif path.is_dir():
                console.print(f"{which}: resuming", highlight=False, soft_wrap=True)
                summaries.append(loop.resume(path, quiet, console)[1])
            else:
                console.print(f"{which}: training", highlight=False, soft_wrap=True)
                summaries.append(loop.start(member.model_copy(update={"name": name}), parent.path, quiet, console)[1])
        except Interrupted as e:  # the whole parent continues, not just this member
            raise Interrupted(e.signum, f"resume with: dlx train --resume {parent.path}") from None
    summary = summarise(summaries, scheme)
    parent.write_json(scheme.summary, summary)
    return summary


def summarise(summaries: list[dict[str, Any]], scheme: Scheme = FOLDS) -> dict[str, Any]:
    """Each split's metrics over the members: mean, sample standard deviation (n - 1) and the values themselves."""
    metrics: dict[str, dict[str, Any]] = {}
    for split in summaries[0]["metrics"]:
        metrics[split] = {}
        for name in summaries[0]["metrics"][split]:
            values = [s["metrics"][split][name] for s in summaries]
            metrics[split][name] = {"mean": statistics.fmean(values), "std": statistics.stdev(values), "values": values}
    return {scheme.count: len(summaries), "runs": [s["run"] for s in summaries], "metrics": metrics,
            "epochs": [s["epochs"] for s in summaries], "seconds": round(sum(s["seconds"] for s in summaries), 3)}


def print_summary(console: Console, path: Path, summary: dict[str, Any]) -> None:
    scheme = next(s for s in SCHEMES if s.count in summary)
    console.print(f"[bold]{path}[/]: {scheme.title.format(k=summary[scheme.count])}, {summary['seconds']:.1f}s; "
                  f"mean ± standard deviation over the {scheme.count}", highlight=False)
    splits = list(summary["metrics"])
    console.print(tables.table(["metric", *splits], [
        (name, *(tables.number(summary["metrics"][s][name]["mean"], summary["metrics"][s][name]["std"]) for s in splits))
        for name in summary["metrics"]["test"]]))
