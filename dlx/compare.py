"""`dlx runs compare`: what differs between runs (their configs, key by key), their final metrics side by
side, and their learning curves overlaid in one PNG."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from dlx.errors import DlxError
from dlx.run.folder import Run
from dlx.runs_table import flatten, resolved

IDENTITY = {"name"}  # differs between any two runs and says nothing about how they were trained
MISSING = "-"


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """The dotted config keys whose values are not the same in every config (a key one config lacks differs)."""
    flat = [flatten(c) for c in configs]
    keys = sorted(set().union(*flat) - IDENTITY)
    return [k for k in keys if any(f.get(k, MISSING) != flat[0].get(k, MISSING) for f in flat[1:])]


def compare(paths: list[Path], out: Path) -> dict[str, Any]:
    """The differing keys with each run's value, each run's final metrics, and the learning-curve PNG at `out`."""
    if len(paths) < 2:
        raise DlxError("runs compare: give two or more run folders")
    runs = [Run.open(p) for p in paths]
    configs = [resolved(r.config_path) for r in runs]
    flat = [flatten(c) for c in configs]
    keys = differing_keys(configs)
    summaries = [r.read_json("summary.json") if (r.path / "summary.json").is_file() else {} for r in runs]
    names = _labels(runs)
    metrics = sorted({f"{split}/{m}" for s in summaries for split, values in s.get("metrics", {}).items() for m in values})
    report = {
        "runs": [str(r.path) for r in runs],
        "differences": {k: [f.get(k, MISSING) for f in flat] for k in keys},
        "metrics": {m: [_final(s, m) for s in summaries] for m in metrics},
        "figure": str(out),
    }
    histories = {name: r.history() for name, r in zip(names, runs)}
    curves = ["train/epoch_loss", "val/loss"]
    curves += sorted({f.get("train.monitor") for f in flat} - set(curves) - {None})
    from dlx import plots

    plots.save(plots.learning_curves_figure(histories, curves), out, dpi=120)
    return report


def _labels(runs: list[Run]) -> list[str]:
    """Folder names, or whole paths where two runs share a folder name."""
    names = [r.name for r in runs]
    return names if len(set(names)) == len(names) else [str(r.path) for r in runs]


def _final(summary: dict[str, Any], key: str) -> float | None:
    split, metric = key.split("/", 1)
    return summary.get("metrics", {}).get(split, {}).get(metric)


def print_report(console: Console, report: dict[str, Any]) -> None:
    names = report["runs"]
    differences = Table(title="config keys that differ" if report["differences"] else "the configs differ only in name")
    differences.add_column("key")
    for name in names:
        differences.add_column(name, justify="right")
    for key, values in report["differences"].items():
        differences.add_row(key, *(str(v) for v in values))
    console.print(differences)
    metrics = Table(title="final metrics (best checkpoint)")
    metrics.add_column("metric")
    for name in names:
        metrics.add_column(name, justify="right")
    for key, values in report["metrics"].items():
        metrics.add_row(key, *("" if v is None else f"{v:.4f}" for v in values))
    console.print(metrics)
    console.print(f"learning curves: {report['figure']}", highlight=False)
