"""`dlx runs compare`: what differs between runs (their configs, key by key), their final metrics side by
side, and their learning curves overlaid in one PNG."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from rich.console import Console

from dlx import tables
from dlx.config import COMPONENTS
from dlx.errors import DlxError
from dlx.run.folder import Run
from dlx.run.records import check_figure_file
from dlx.config import flatten
from dlx.runs_table import resolved, saved

IDENTITY = {"name"}  # differs between any two runs and says nothing about how they were trained
MISSING = "-"


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """The dotted config keys whose values are not the same in every config (a key one config lacks differs)."""
    flat = [flatten(c) for c in configs]
    keys = sorted(set().union(*flat) - IDENTITY)
    return [k for k in keys if any(f.get(k, MISSING) != flat[0].get(k, MISSING) for f in flat[1:])]


def compare(paths: list[Path], out: Path) -> dict[str, Any]:
    """The differing keys with each run's value, each run's final metrics, and the learning-curve PNG at `out`."""
    check_figure_file(out)
    if len(paths) < 2:
        raise DlxError("runs compare: give two or more run folders")
    runs = [Run.open(p) for p in paths]
    configs = _configs(runs)
    flat = [flatten(c) for c in configs]
    keys = differing_keys(configs)
    summaries = [r.read_json("summary.json") if (r.path / "summary.json").is_file() else {} for r in runs]
    names = _labels(runs, {k: [f.get(k, MISSING) for f in flat] for k in keys})
    metrics = sorted({f"{split}/{m}" for s in summaries for split, values in s.get("metrics", {}).items() for m in values})
    report = {
        "runs": [str(r.path) for r in runs],
        "differences": {k: [f.get(k, MISSING) for f in flat] for k in keys},
        "metrics": {m: [_final(s, m) for s in summaries] for m in metrics},
        "labels": names,  # of the curves in the figure
        "figure": str(out),
    }
    histories = {name: r.history() for name, r in zip(names, runs)}
    # the training loss of every parameter group the runs logged (train/epoch_loss, or train/generator_epoch_loss
    # and train/discriminator_epoch_loss), the validation loss, and what each run monitored
    logged = {key for history in histories.values() for row in history for key in row}
    curves = [*sorted(k for k in logged if k.startswith("train/") and k.endswith("epoch_loss")), "val/loss"]
    curves += sorted({f.get("train.monitor") for f in flat} - set(curves) - {None})
    from dlx import plots

    plots.save(plots.learning_curves_figure(histories, curves), out, dpi=120)
    return report


def _configs(runs: list[Run]) -> list[dict[str, Any]]:
    """Each run's config as saved (runs_table.saved: no registry, no torch), completed with the entries' defaults
    (runs_table.resolved) only where a run lacks a setting that another run of the same entry has: it was saved
    before the setting existed, and would otherwise show as a difference."""
    configs = [saved(r.config_path) for r in runs]
    flat = [flatten(c) for c in configs]
    for a, b in itertools.permutations(flat, 2):
        for key in a.keys() - b.keys():
            section = key.split(".")[0]
            if section in COMPONENTS and a.get(f"{section}.name") == b.get(f"{section}.name"):
                return [resolved(r.config_path) for r in runs]
    return configs


def _labels(runs: list[Run], differences: dict[str, list[Any]]) -> list[str]:
    """Each curve's label says what differs in its config, e.g. 'lr=0.01, seed=3' (a key by its last part where
    that names one key); folder names (whole paths where two share one) go first where configs are the same."""
    names = [r.name for r in runs]
    names = names if len(set(names)) == len(names) else [str(r.path) for r in runs]
    ends = [key.split(".")[-1] for key in differences]
    short = [end if ends.count(end) == 1 else key for key, end in zip(differences, ends)]
    labels = [", ".join(f"{k}={values[i]}" for k, values in zip(short, differences.values())) for i in range(len(runs))]
    if all(labels) and len(set(labels)) == len(labels):
        return labels
    return [f"{name}: {label}" if label else name for name, label in zip(names, labels)]


def _final(summary: dict[str, Any], key: str) -> float | None:
    split, metric = key.split("/", 1)
    return summary.get("metrics", {}).get(split, {}).get(metric)


def print_report(console: Console, report: dict[str, Any]) -> None:
    names = report["runs"]
    differ = "config keys that differ" if report["differences"] else "the configs differ only in name"
    # a config value as written (a learning rate of 0.002 is not 0.0020)
    console.print(tables.table(["key", *names], [(key, *map(str, values)) for key, values in report["differences"].items()],
                               differ))
    console.print(tables.table(["metric", *names], [(key, *values) for key, values in report["metrics"].items()],
                               "final metrics (best checkpoint)"))
    console.print(f"learning curves: {report['figure']}", highlight=False)
