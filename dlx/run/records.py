"""Where a command's --out may write, checked before any work. A run's record, what `dlx train` wrote into its folder,
is never replaced by another command's output file (a --out of `dlx predict`, `dlx export` or `dlx generate` named
runs/x/metrics.jsonl or runs/x/checkpoints/best.pt would lose the run's history or its weights for good)."""
from __future__ import annotations

from pathlib import Path

from dlx.errors import DlxError
from dlx.run import lock
from dlx.run.folder import is_run

CHECKPOINTS = "checkpoints"
RECORDS = frozenset({"config.yaml", "metrics.jsonl", "summary.json", "vocab.json", "learning_curves.png", lock.NAME})
EVENTS = "events.out.tfevents."  # TensorBoard's files, one per process that wrote to the run


def _run_recorded_in(path: Path) -> Path | None:
    """The run folder whose record `path` is part of, or None."""
    folder = path.parent
    if folder.name == CHECKPOINTS:
        return folder.parent if is_run(folder.parent) else None
    return folder if (path.name in RECORDS or path.name.startswith(EVENTS)) and is_run(folder) else None


def check_output_file(path: Path, option: str = "--out") -> None:
    """Refuse, before any work, an output file that is a folder or an existing file of a run's record."""
    if path.is_dir():
        raise DlxError(f"{option} {path}: a folder; give a file name")
    if (path.exists() or path.is_symlink()) and (run := _run_recorded_in(path.absolute())) is not None:
        raise DlxError(f"{option} {path}: part of the run {run}'s own record, which this would replace; "
                       f"write to another file")


def check_output_folder(path: Path, option: str = "--out") -> None:
    """Refuse, before any work, an output folder that is a file (found only when the first figure is written)."""
    if path.exists() and not path.is_dir():
        raise DlxError(f"{option} {path}: a file; give a folder (made if missing)")


def check_figure_file(path: Path, option: str = "--out") -> None:
    """check_output_file, and a name matplotlib writes: what plots.save would refuse only once the figure is drawn."""
    from dlx.plots import figure_kind  # matplotlib only for the commands that draw

    check_output_file(path, option)
    figure_kind(path)
