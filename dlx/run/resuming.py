"""What `dlx train --resume` checks before it continues a run: that config.yaml still says what the run was trained
with, and, when there is no last.pt to continue from, why (so that the message it prints is true)."""
from __future__ import annotations

from typing import Any

from dlx.config import Config, flatten
from dlx.errors import DlxError
from dlx.run.checkpoint import Checkpoint
from dlx.run.folder import Run, is_run

ACCEPT_FLAG = "--accept-config-change"


def check_own(run: Run) -> None:
    """Resuming writes checkpoints, logs and a summary into the folder: it must be one that dlx made, with its own
    checkpoints folder (a link to another run's would overwrite that run's checkpoints)."""
    if not is_run(run.path):
        raise DlxError(f"{run.path}: not a run that dlx made (no checkpoint, summary.json, metrics.jsonl or lock file "
                       f"of dlx's); nothing changed; start a run from it with `dlx train {run.config_path}`")
    if (run.path / "checkpoints").is_symlink():
        raise DlxError(f"{run.path / 'checkpoints'}: a symbolic link; a resumed run writes its checkpoints into a real "
                       "folder of its own (replace the link with a copy)")


def config_changes(saved: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """'key: old -> new' for each setting of the checkpoint's config that config.yaml now gives another value.
    The run's name is left out (the folder may be called name-2), and so are settings the checkpoint does not have
    (a later dlx added them, with defaults)."""
    old, new = flatten(saved), flatten(now)
    return [f"{key}: {old[key]!r} -> {new.get(key, '(removed)')!r}" for key in old
            if key != "name" and old[key] != new.get(key, "(removed)")]


def check_config(run: Run, checkpoint: Checkpoint, config: Config, accept: bool) -> list[str]:
    """The changes config.yaml made since the checkpoint was saved; a DlxError unless `accept`."""
    changes = config_changes(checkpoint.config, config.to_dict())
    if changes and not accept:
        shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5 else "")
        raise DlxError(f"{run.config_path} was edited since the checkpoint was saved ({shown}); resume with "
                       f"{ACCEPT_FLAG} to continue with the new values, or train a new run")
    return changes


def no_checkpoint_note(run: Run, config: Config) -> str:
    """Why a run without last.pt trains again from the start; it logged epochs when last.pt was deferred
    (train.checkpoint_seconds) or its write failed (a full disk)."""
    logged = [h for h in run.history() if "epoch" in h]
    if not logged:
        return f"{run.path}: no checkpoint yet (it stopped before its first epoch ended); training from the start"
    return (f"{run.path}: no last.pt to continue from, although {len(logged)} epoch(s) were logged (last.pt is written "
            f"at most every train.checkpoint_seconds={config.train.checkpoint_seconds:g}s, or its write failed); "
            "training again from the start")
