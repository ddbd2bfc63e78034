"""k-fold cross-validation: `dlx train EXP.yaml --folds K` trains one child run per fold inside a parent folder.

runs/<name>/
  config.yaml        the experiment's resolved config, without a fold: `dlx train runs/<name>/config.yaml --folds K`
  cv_summary.json    each metric's mean and standard deviation over the folds, per split
  fold-1/ ... fold-K/  ordinary runs; each one's config.yaml holds its `data.fold: {k: K, index: i}`, so
                     `dlx train runs/<name>/fold-2/config.yaml` reproduces that fold alone

The fold is a key of the data section, not a runtime argument, so every child's saved config still
reproduces it. The test split is the same for every fold (and for a run without folds); fold i of the
remaining examples is child i's val split.
"""
from __future__ import annotations

import statistics
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

SUMMARY = "cv_summary.json"


def fold_config(config: Config, k: int, index: int) -> Config:
    return validate(apply_overrides(config.to_dict(), [f"data.fold={{k: {k}, index: {index}}}"]))


def is_parent(path: Path) -> bool:
    return (path / "config.yaml").is_file() and ((path / SUMMARY).is_file() or (path / "fold-1").is_dir())


def train(config: Config, k: int, runs_root: Path, quiet: bool = False, console: Console | None = None) -> tuple[Run, dict]:
    """Train the k folds one after another, then write and return the summary over them."""
    if config.data.fold is not None:
        raise DlxError("--folds: this config is already one fold (data.fold is set); train its parent's config.yaml")
    if k < 2:
        raise DlxError(f"--folds {k}: cross-validation needs at least 2 folds (the course uses 5 or 10)")
    folds = [fold_config(config, k, i) for i in range(1, k + 1)]  # every fold validated before anything is written
    parent = Run.create(runs_root, config.name)
    write_atomic(parent.config_path, dump_config(config.model_copy(update={"name": parent.name})).encode())
    parent.path.joinpath("checkpoints").rmdir()  # a parent holds runs, not weights
    try:
        return parent, _train_folds(parent, folds, quiet, console)
    except DlxError:
        if not (parent.path / "fold-1").exists():  # the config cannot be built: leave nothing behind, as a single run would
            parent.config_path.unlink()
            (parent.path / lock.NAME).unlink()
            parent.path.rmdir()
        raise
    finally:
        parent.close()  # its lock, held while the folds train: `dlx runs rm` and a second --resume wait for the end


def resume(parent_path: str | Path, quiet: bool = False, console: Console | None = None) -> tuple[Run, dict]:
    """Continue a cross-validation: finished folds stay, a stopped fold resumes, missing folds are trained."""
    parent = Run(Path(parent_path)).claim("resume it")
    try:
        first = load_config(parent.path / "fold-1" / "config.yaml")
        k = first.data.fold.k
        return parent, _train_folds(parent, [fold_config(load_config(parent.config_path), k, i) for i in range(1, k + 1)],
                                    quiet, console)
    finally:
        parent.close()


def _train_folds(parent: Run, folds: list[Config], quiet: bool, console: Console | None) -> dict[str, Any]:
    from dlx.train import loop  # the training machinery only when training: `dlx runs` reads is_parent

    console = console or Console(stderr=True)
    summaries = []
    for fold in folds:
        name = f"fold-{fold.data.fold.index}"
        path = parent.path / name
        which = f"fold {fold.data.fold.index}/{fold.data.fold.k} ({path})"
        try:
            if (path / "summary.json").is_file():
                console.print(f"{which}: already trained", highlight=False, soft_wrap=True)
                summaries.append(Run(path).read_json("summary.json"))
            elif path.is_dir():
                console.print(f"{which}: resuming", highlight=False, soft_wrap=True)
                summaries.append(loop.resume(path, quiet, console)[1])
            else:
                console.print(f"{which}: training", highlight=False, soft_wrap=True)
                summaries.append(loop.start(fold.model_copy(update={"name": name}), parent.path, quiet, console)[1])
        except Interrupted as e:  # the whole cross-validation continues from the parent, not just this fold
            raise Interrupted(e.signum, f"resume with: dlx train --resume {parent.path}") from None
    summary = summarise(summaries)
    parent.write_json(SUMMARY, summary)
    return summary


def summarise(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Each split's metrics over the folds: mean, sample standard deviation (n - 1) and the values themselves."""
    metrics: dict[str, dict[str, Any]] = {}
    for split in summaries[0]["metrics"]:
        metrics[split] = {}
        for name in summaries[0]["metrics"][split]:
            values = [s["metrics"][split][name] for s in summaries]
            metrics[split][name] = {"mean": statistics.fmean(values), "std": statistics.stdev(values), "values": values}
    return {"folds": len(summaries), "runs": [s["run"] for s in summaries], "metrics": metrics,
            "epochs": [s["epochs"] for s in summaries], "seconds": round(sum(s["seconds"] for s in summaries), 3)}


def print_summary(console: Console, path: Path, summary: dict[str, Any]) -> None:
    console.print(f"[bold]{path}[/]: {summary['folds']}-fold cross-validation, {summary['seconds']:.1f}s; "
                  f"mean ± standard deviation over the folds", highlight=False)
    splits = list(summary["metrics"])
    console.print(tables.table(["metric", *splits], [
        (name, *(tables.number(summary["metrics"][s][name]["mean"], summary["metrics"][s][name]["std"]) for s in splits))
        for name in summary["metrics"]["test"]]))
