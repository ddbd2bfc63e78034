"""`dlx runs`: every run under a runs folder as a table row (status, epochs, best validation metric, test metric,
duration), sorted and filtered; and `dlx runs rm`, which deletes only what is plainly a dlx run."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.table import Table

from dlx import crossval
from dlx.config import parse_override, read_yaml
from dlx.errors import DlxError, did_you_mean
from dlx.metrics import HIGHER_IS_BETTER
from dlx.run.folder import Run, delete, is_run

FINISHED, INTERRUPTED, UNFINISHED, CROSS_VALIDATED = "finished", "interrupted", "running or crashed", "cross-validated"


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': 0.1}} -> {'optimizer.lr': 0.1}; lists stay whole values."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def resolved(config_path: Path) -> dict[str, Any]:
    """A run's config with today's defaults filled in, so runs saved before a setting existed compare equal on it;
    as saved when it no longer validates."""
    from dlx import build  # noqa: F401  (registers every entry before validation)
    from dlx.config import load

    try:
        return load(config_path).to_dict()
    except DlxError:
        return read_yaml(config_path)


@dataclass
class Row:
    name: str  # the path below the runs folder, e.g. digits_cnn or cv/fold-2
    config: dict[str, Any]  # flattened
    status: str
    epochs: int | None = None
    seconds: float | None = None
    monitor: str = "val/loss"
    best: float | None = None  # the monitored value at the best epoch
    test: float | None = None  # the same metric on the test split
    folds: int | None = None  # cross-validation: the number of folds
    spread: dict[str, float] = field(default_factory=dict)  # cross-validation: std of best and test
    values: dict[str, float] = field(default_factory=dict)  # every final metric, as split/metric, for --sort

    @property
    def experiment(self) -> str:
        return f"{self.config.get('data.name', '?')} / {self.config.get('model.name', '?')}"


def find(runs_dir: Path) -> list[Row]:
    """Every run and cross-validation below `runs_dir` (the folds of a cross-validation too), by name."""
    if not runs_dir.is_dir():
        raise DlxError(f"{runs_dir}: no such runs folder; train a run first or give --runs-dir")
    rows = []
    for path in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        if crossval.is_parent(path):
            rows.append(_parent_row(path, runs_dir))
            rows += [_run_row(child, runs_dir) for child in sorted(path.iterdir()) if is_run(child)]
        elif is_run(path):
            rows.append(_run_row(path, runs_dir))
    return rows


def _run_row(path: Path, runs_dir: Path) -> Row:
    run = Run(path)
    config = flatten(resolved(run.config_path))
    monitor = str(config.get("train.monitor", "val/loss"))
    metric = monitor.split("/")[-1]
    summary_path = path / "summary.json"
    if summary_path.is_file():
        summary = run.read_json("summary.json")
        final = summary.get("metrics", {})
        return Row(str(path.relative_to(runs_dir)), config, FINISHED, summary.get("epochs"), summary.get("seconds"),
                   monitor, next(iter(summary.get("monitor", {}).values()), None), final.get("test", {}).get(metric),
                   values={f"{split}/{k}": v for split, values in final.items() for k, v in values.items()})
    history = run.history()
    logged = [h[monitor] for h in history if isinstance(h.get(monitor), (int, float))]
    best = (max if metric in HIGHER_IS_BETTER else min)(logged) if logged else None
    return Row(str(path.relative_to(runs_dir)), config, _unfinished_status(run), history[-1].get("epoch") if history else 0,
               None, monitor, best, values={monitor: best} if best is not None else {})


def _unfinished_status(run: Run) -> str:
    """A run stopped by Ctrl-C or SIGTERM saved last.pt in the middle of an epoch; a running (or crashed) run's
    last.pt, if any, is from the end of an epoch."""
    path = run.checkpoint("last")
    if not path.is_file():
        return UNFINISHED
    try:  # memory-mapped: only the loop's few numbers are read, not the weights
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return INTERRUPTED if state["loop"]["batch"] > 0 else UNFINISHED
    except Exception:  # noqa: BLE001  torch.load on a half-written or foreign file raises errors of many kinds
        return UNFINISHED  # and the status stays unknown


def _parent_row(path: Path, runs_dir: Path) -> Row:
    config = flatten(resolved(path / "config.yaml"))
    monitor = str(config.get("train.monitor", "val/loss"))
    split, metric = monitor.split("/", 1) if "/" in monitor else ("val", monitor)
    if not (path / crossval.SUMMARY).is_file():
        return Row(str(path.relative_to(runs_dir)), config, UNFINISHED, monitor=monitor)
    summary = json.loads((path / crossval.SUMMARY).read_text())
    final = summary["metrics"]
    val, test = final.get(split if split in final else "val", {}).get(metric), final.get("test", {}).get(metric)
    return Row(str(path.relative_to(runs_dir)), config, CROSS_VALIDATED, max(summary["epochs"]), summary["seconds"],
               monitor, val["mean"] if val else None, test["mean"] if test else None, folds=summary["folds"],
               spread={k: v["std"] for k, v in (("best", val), ("test", test)) if v},
               values={f"{s}/{k}": v["mean"] for s, values in final.items() for k, v in values.items()})


def select(rows: list[Row], filters: list[str]) -> list[Row]:
    """Rows whose config (or status) has every KEY=VALUE, e.g. model.name=cnn, optimizer.lr=0.01, status=finished."""
    for text in filters:
        keys, value = parse_override(text)
        key = ".".join(keys)
        known = {"status"} | {k for row in rows for k in row.config}
        if rows and key not in known:
            raise DlxError(f"--filter '{text}': no run has the key '{key}'{_hint(key, known)}")
        rows = [row for row in rows if _value(row, key) == value or str(_value(row, key)) == str(value)]
    return rows


def _value(row: Row, key: str) -> Any:
    return row.status if key == "status" else row.config.get(key)


def order(rows: list[Row], key: str | None) -> list[Row]:
    """By name, or by a column (epochs, seconds) or a final metric (test/accuracy, val/loss, ...): best first;
    runs without the value last."""
    if key is None or key == "name":
        return sorted(rows, key=lambda r: r.name)
    known = {"name", "epochs", "seconds"} | {k for row in rows for k in row.values}
    if key not in known:
        raise DlxError(f"--sort '{key}': not a column or a logged metric{_hint(key, known)}")
    descending = key.split("/")[-1] in HIGHER_IS_BETTER

    def sort_key(row: Row) -> tuple[bool, float]:
        value = getattr(row, key) if key in ("epochs", "seconds") else row.values.get(key)
        return value is None, (-value if descending else value) if value is not None else 0.0

    return sorted(rows, key=sort_key)


def table(rows: list[Row], title: str) -> Table:
    """One row per run; the metric's name goes in the header when every run monitors the same one."""
    monitors = {row.monitor for row in rows}
    shared = monitors.pop() if len(monitors) == 1 else None
    best, test = (f"best {shared}", f"test/{shared.split('/')[-1]}") if shared else ("best val", "test")
    out = Table(title=title)
    out.add_column("run", overflow="fold")
    for column in ("data / model", "status", "epochs", best, test, "time"):
        out.add_column(column, justify="left" if column in ("data / model", "status") else "right")
    for row in rows:
        metric = row.monitor.split("/")[-1]
        status = row.status if row.folds is None else f"{row.status} ({row.folds} folds)"
        out.add_row(row.name, row.experiment, status, "" if row.epochs is None else str(row.epochs),
                    _number(row.best, row.spread.get("best"), None if shared else row.monitor),
                    _number(row.test, row.spread.get("test"), None if shared else f"test/{metric}"),
                    "" if row.seconds is None else f"{row.seconds:.1f}s")
    return out


def _number(value: float | None, spread: float | None, label: str | None) -> str:
    if value is None:
        return ""
    return (f"{label} " if label else "") + f"{value:.4f}" + (f" ± {spread:.4f}" if spread is not None else "")


def _hint(name: str, known: set[str]) -> str:
    """A did-you-mean, or else every choice: the keys of a runs folder are not in any registry."""
    hint = did_you_mean(name, known)
    return hint if hint.startswith(" (did you mean") else f" (choose from: {', '.join(sorted(known))})"


def removable(path: Path) -> Path:
    """`path` if it is a run or a cross-validation folder, else a DlxError: rm never deletes anything else. A run is
    told by what dlx writes (dlx.run.folder.is_run), a cross-validation by its summary or a first fold that is a run."""
    if path.is_symlink():  # deleting through a link would remove a folder the user did not name
        raise DlxError(f"{path}: a symbolic link, not a run folder; remove the link itself with rm, or name the folder "
                       "it points to")
    if not path.is_dir():
        raise DlxError(f"{path}: no such run folder")
    if not (is_run(path) or _is_cross_validation(path)):
        raise DlxError(f"{path}: not a dlx run folder (no checkpoint, summary.json or metrics.jsonl that dlx wrote); "
                       "nothing deleted")
    return path


def _is_cross_validation(path: Path) -> bool:
    if not crossval.is_parent(path):
        return False
    try:
        summary = json.loads((path / crossval.SUMMARY).read_text())
    except (OSError, ValueError):
        return is_run(path / "fold-1")
    return isinstance(summary, dict) and "folds" in summary


def remove(path: Path) -> None:
    """Delete a run, or a cross-validation with its folds, holding the lock of each: one that a process is writing
    to (training, resuming, evaluating) is refused and nothing is deleted."""
    removable(path)
    folds = [fold for fold in sorted(path.iterdir()) if is_run(fold)] if crossval.is_parent(path) else []
    delete(path, folds)
