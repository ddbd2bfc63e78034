"""`dlx runs`: every run under a runs folder as a table row (status, epochs, best validation metric, test metric,
duration), sorted and filtered, with a row for each cross-validation and each sweep; and `dlx runs rm`, which deletes
only what is plainly a dlx run.

All of it reads run folders without torch: configs as saved, with dlx's own sections completed by today's defaults
(`saved`); only telling an interrupted run from a crashed one opens a checkpoint (`stopped_mid_epoch`), and only
a filter on a setting some run lacks completes the entries' settings through the registries (`resolved`).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic

from dlx import crossval, tables
from dlx.config import COMPONENTS, Config, flatten, parse_override, read_yaml
from dlx.errors import DlxError, did_you_mean
from dlx.metrics import higher_is_better
from dlx.run.folder import Run, delete, is_run

if TYPE_CHECKING:
    from rich.table import Table

FINISHED, INTERRUPTED, UNFINISHED = "finished", "interrupted", "running or crashed"
CROSS_VALIDATED, SWEEP, DAMAGED = crossval.FOLDS.status, "sweep", "damaged"
TRIALS = "trial-*"  # a sweep's trial runs: runs/<study>/trial-0000, ...


def saved(config_path: Path) -> dict[str, Any]:
    """A run's config as saved, with dlx's own sections (train, eval, ...) completed by today's defaults; the registry
    entries' settings stay as saved, so no entry's module (nor torch) is imported. As saved when it does not validate."""
    data = read_yaml(config_path)
    try:
        return Config.model_validate(data).to_dict()
    except pydantic.ValidationError:
        return data


def resolved(config_path: Path) -> dict[str, Any]:
    """A run's config with today's defaults filled in everywhere, the entries' settings too (this imports their
    modules), so runs saved before a setting existed compare equal on it; as saved when it no longer validates."""
    from dlx.config import load

    try:
        return load(config_path).to_dict()
    except DlxError:
        return read_yaml(config_path)


def is_sweep(path: Path) -> bool:
    """A folder `dlx sweep` made: its study's journal, or trial runs (a study kept in a database has no journal)."""
    return (path / "study.journal").is_file() or any(is_run(trial) for trial in path.glob(TRIALS))


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
    detail: str = ""  # beside the status: a cross-validation's folds, a sweep's trials, what is damaged
    config_path: Path | None = None  # where `config` was read, to complete it for a filter (see select)
    spread: dict[str, float] = field(default_factory=dict)  # cross-validation: std of best and test
    values: dict[str, float] = field(default_factory=dict)  # every final metric, as split/metric, for --sort

    @property
    def experiment(self) -> str:
        return f"{self.config.get('data.name', '?')} / {self.config.get('model.name', '?')}"


def find(runs_dir: Path) -> list[Row]:
    """Every run, cross-validation (and its folds) and sweep below `runs_dir`, by name; a folder whose files cannot
    be read is one damaged row, not an error."""
    if not runs_dir.is_dir():
        raise DlxError(f"{runs_dir}: no such runs folder; train a run first or give --runs-dir")
    if is_run(runs_dir) or crossval.is_parent(runs_dir):  # its table would be empty, as if nothing had been trained
        raise DlxError(f"--runs-dir {runs_dir}: a run folder; give the folder that holds the runs, "
                       f"e.g. --runs-dir {runs_dir.parent}")
    rows = []
    for path in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        if crossval.is_parent(path):
            rows.append(_row(_parent_row, path, runs_dir))
            rows += [_row(_run_row, child, runs_dir) for child in sorted(path.iterdir()) if is_run(child)]
        elif is_run(path):
            rows.append(_row(_run_row, path, runs_dir))
        elif is_sweep(path):
            rows.append(_row(_sweep_row, path, runs_dir))
    return rows


def _row(read, path: Path, runs_dir: Path) -> Row:
    name = str(path.relative_to(runs_dir))
    try:
        return read(path, name)
    except DlxError as e:
        return Row(name, {}, DAMAGED, detail=str(e))


def _json(path: Path, required: tuple[str, ...]) -> dict[str, Any]:
    """A summary file's mapping; a DlxError naming the file when it is not JSON or lacks a required key."""
    try:
        data = json.loads(path.read_text())
    except ValueError:
        raise DlxError(f"{path.name} is not valid JSON") from None
    except OSError as e:
        raise DlxError(f"{path.name}: {e.strerror}") from None
    missing = [key for key in required if not isinstance(data, dict) or key not in data]
    if missing:
        raise DlxError(f"{path.name} lacks {', '.join(missing)}")
    return data


def _config(path: Path) -> dict[str, Any]:
    return flatten(saved(path / "config.yaml"))


def _completed(row: Row, key: str) -> Row:
    """The row with its entries' settings completed by today's defaults, when it lacks `key` and `key` is such a
    setting (model.init in a run saved before model.init existed): the only place `dlx runs` reads the registries."""
    section = key.split(".")[0]
    if key in row.config or section not in COMPONENTS or "." not in key or row.config_path is None:
        return row
    return replace(row, config=flatten(resolved(row.config_path)))


def _monitor(config: dict[str, Any]) -> str:
    return str(config.get("train.monitor", "val/loss"))


def _finals(metrics: dict[str, dict[str, Any]]) -> dict[str, float]:
    return {f"{split}/{k}": v for split, values in metrics.items() for k, v in values.items()}


def _run_row(path: Path, name: str) -> Row:
    config = _config(path)
    monitor = _monitor(config)
    metric = monitor.split("/")[-1]
    if (path / "summary.json").is_file():
        summary = _json(path / "summary.json", ("metrics",))
        final = summary["metrics"]
        try:
            return Row(name, config, FINISHED, summary.get("epochs"), summary.get("seconds"), monitor,
                       next(iter(summary.get("monitor", {}).values()), None), final.get("test", {}).get(metric),
                       config_path=path / "config.yaml", values=_finals(final))
        except (AttributeError, TypeError):  # JSON, but not the shape dlx writes
            raise DlxError("summary.json is not a dlx summary") from None
    run = Run(path)
    history = run.history()
    logged = [h[monitor] for h in history if isinstance(h.get(monitor), (int, float))]
    best = (max if higher_is_better(metric) else min)(logged) if logged else None
    status = INTERRUPTED if stopped_mid_epoch(run) else UNFINISHED
    return Row(name, config, status, history[-1].get("epoch") if history else 0, None, monitor, best,
               config_path=path / "config.yaml", values={monitor: best} if best is not None else {})


def stopped_mid_epoch(run: Run) -> bool:
    """Whether the run's last.pt was saved in the middle of an epoch, as a stop by Ctrl-C or SIGTERM saves it; a
    running (or crashed) run's last.pt, if any, is from the end of an epoch. The one place `dlx runs` opens a
    checkpoint, and so the one place it imports torch: only for runs without a summary."""
    path = run.checkpoint("last")
    if not path.is_file():
        return False
    from dlx.run.checkpoint import loop_position  # torch, only for runs that stopped before finishing

    loop = loop_position(path)
    return loop is not None and loop.get("batch", 0) > 0


def _parent_row(path: Path, name: str) -> Row:
    config = _config(path)
    monitor = _monitor(config)
    split, metric = monitor.split("/", 1) if "/" in monitor else ("val", monitor)
    scheme = crossval.scheme_of(path)
    if not (path / scheme.summary).is_file():
        return Row(name, config, UNFINISHED, monitor=monitor, config_path=path / "config.yaml")
    summary = _json(path / scheme.summary, ("metrics", "epochs", "seconds", scheme.count))
    try:
        final = summary["metrics"]
        val, test = final.get(split if split in final else "val", {}).get(metric), final.get("test", {}).get(metric)
        return Row(name, config, scheme.status, max(summary["epochs"]), summary["seconds"], monitor,
                   val["mean"] if val else None, test["mean"] if test else None, f"{summary[scheme.count]} {scheme.count}",
                   path / "config.yaml", spread={k: v["std"] for k, v in (("best", val), ("test", test)) if v},
                   values={f"{s}/{k}": v["mean"] for s, values in final.items() for k, v in values.items()})
    except (AttributeError, TypeError, KeyError, ValueError):  # JSON, but not the shape dlx writes
        raise DlxError(f"{scheme.summary} is not a dlx {scheme.kind} summary") from None


def _sweep_row(path: Path, name: str) -> Row:
    """A study in one row: its trials, and the best finished trial's values (each trial monitors the sweep's
    metric in the sweep's direction)."""
    trials = [trial for trial in sorted(path.glob(TRIALS)) if is_run(trial)]
    if not trials:
        return Row(name, {}, SWEEP, detail="no trial yet")
    finished = [_row(_run_row, trial, path) for trial in trials if (trial / "summary.json").is_file()]
    finished = [row for row in finished if row.status == FINISHED and row.best is not None]
    config = finished[0].config if finished else _config(trials[0])
    monitor = _monitor(config)
    mode = config.get("train.mode")
    pick = max if (mode == "max" if mode in ("max", "min") else higher_is_better(monitor)) else min
    detail = f"{len(trials)} trials, {len(finished)} finished"
    if not finished:
        return Row(name, config, SWEEP, monitor=monitor, detail=detail)
    best = pick(finished, key=lambda row: row.best)
    return Row(name, config, SWEEP, best.epochs, sum(row.seconds or 0.0 for row in finished), monitor, best.best,
               best.test, f"{detail}, best {best.name}", values=best.values)


def select(rows: list[Row], filters: list[str]) -> list[Row]:
    """Rows whose config (or status) has every KEY=VALUE, e.g. model.name=cnn, optimizer.lr=0.01, status=finished."""
    for text in filters:
        keys, value = parse_override(text, "--filter")
        key = ".".join(keys)
        rows = [_completed(row, key) for row in rows]
        known = {"status"} | {k for row in rows for k in row.config}
        if rows and key not in known:
            raise DlxError(f"--filter '{text}': no run has the key '{key}'{_hint(key, known)}")
        rows = [row for row in rows if _matches(row, key, value)]
    return rows


def _matches(row: Row, key: str, value: Any) -> bool:
    found = row.status if key == "status" else row.config.get(key)
    return found == value or str(found) == str(value)


def order(rows: list[Row], key: str | None) -> list[Row]:
    """By name, or by a column (epochs, seconds) or a final metric (test/accuracy, val/loss, ...): best first;
    runs without the value last."""
    if key is None or key == "name":
        return sorted(rows, key=lambda r: r.name)
    known = {"name", "epochs", "seconds"} | {k for row in rows for k in row.values}
    if key not in known:
        raise DlxError(f"--sort '{key}': not a column or a logged metric{_hint(key, known)}")
    descending = higher_is_better(key)

    def sort_key(row: Row) -> tuple[bool, float]:
        value = getattr(row, key) if key in ("epochs", "seconds") else row.values.get(key)
        return value is None, (-value if descending else value) if value is not None else 0.0

    return sorted(rows, key=sort_key)


def table(rows: list[Row], title: str, sort: str | None = None) -> Table:
    """One row per run; the metric's name goes in the header when every run monitors the same one. A --sort metric
    the other columns do not show gets a column of its own, so the order can be read off the table."""
    monitors = {row.monitor for row in rows}
    shared = monitors.pop() if len(monitors) == 1 else None
    best, test = (f"best {shared}", f"test/{shared.split('/')[-1]}") if shared else ("best val", "test")
    shown = {"name", "epochs", "seconds", *((shared, test) if shared else ())}
    extra = [sort] if sort is not None and sort not in shown else []
    columns = [tables.Column("run", text=True, fold=True), tables.Column("data / model", text=True),
               tables.Column("status", text=True), "epochs", best, test, *extra, "time"]
    return tables.table(columns, [_cells(row, shared, extra) for row in rows],
                        title + (f", sorted by {sort}" if sort not in (None, "name") else ""))


def _cells(row: Row, shared: str | None, extra: list[str]) -> tuple:
    metric = row.monitor.split("/")[-1]
    return (row.name, row.experiment, f"{row.status} ({row.detail})" if row.detail else row.status, row.epochs,
            _labelled(row.best, row.spread.get("best"), None if shared else row.monitor),
            _labelled(row.test, row.spread.get("test"), None if shared else f"test/{metric}"),
            *(row.values.get(key) for key in extra), tables.seconds(row.seconds))


def _labelled(value: float | None, spread: float | None, label: str | None) -> str:
    return (f"{label} " if label and value is not None else "") + tables.number(value, spread)


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
    """A parent of member runs (cross-validation or bagging), told by its summary or a first member that is a run."""
    scheme = crossval.scheme_of(path)
    if scheme is None:
        return False
    try:
        summary = json.loads((path / scheme.summary).read_text())
    except (OSError, ValueError):
        return is_run(path / scheme.child(1))
    return isinstance(summary, dict) and scheme.count in summary


def remove(path: Path) -> None:
    """Delete a run, or a cross-validation with its folds, holding the lock of each: one that a process is writing
    to (training, resuming, evaluating) is refused and nothing is deleted."""
    removable(path)
    folds = [fold for fold in sorted(path.iterdir()) if is_run(fold)] if crossval.is_parent(path) else []
    delete(path, folds)
