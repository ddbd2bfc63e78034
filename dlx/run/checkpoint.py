"""Checkpoints: written atomically (never a half-written file), loaded with weights_only=True (never code).

Writes go through a background thread so that a checkpoint costs the training loop only a copy of the
state in memory; `CheckpointWriter.close()` waits until everything queued is on disk. `RunCheckpoints`
decides when a run's best.pt and last.pt are written.
"""
from __future__ import annotations

import io
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dlx.errors import DlxError
from dlx.atomic import write_atomic

FORMAT = "dlx-checkpoint-1"


def snapshot(obj: Any) -> Any:
    """A deep copy of nested state whose tensors no longer change as training goes on."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(snapshot(v) for v in obj)
    return obj


WRAPPER_PREFIXES = ("_orig_mod.", "module.")  # torch.compile's and DistributedDataParallel's


def plain_keys(state_dict: dict[str, Any]) -> dict[str, Any]:
    """A model's state with the keys of the plain module, whichever wrapper saved it."""
    def plain(key: str) -> str:
        for prefix in WRAPPER_PREFIXES:
            key = key.removeprefix(prefix)
        return key

    return {plain(k): v for k, v in state_dict.items()}


def save(state: dict[str, Any], path: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    write_atomic(path, buffer.getvalue())


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A dlx checkpoint, or a DlxError saying why the file is not one."""
    if not path.is_file():
        raise DlxError(f"{path}: no such checkpoint")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickles too: the one line below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001  a damaged file can fail anywhere in unpickling; any failure means unreadable
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        if "Weights only load failed" in reason:  # torch's own text would suggest turning the protection off
            reason = "it holds Python objects other than tensors and numbers, and dlx never runs a file's code"
        raise DlxError(f"{path}: not a readable dlx checkpoint (corrupt, truncated or unsafe: {reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DlxError(f"{path}: not a dlx checkpoint (no '{FORMAT}' marker)")
    return state


class CheckpointWriter:
    """Saves snapshots on a background thread, newest wins: a save queued behind a slow disk is replaced
    by a newer one for the same path instead of piling up. Files are written in the order submitted, so a
    kill never leaves a last.pt that names a best epoch whose best.pt is not yet on disk."""

    def __init__(self):
        self._pending: dict[Path, dict[str, Any]] = {}
        self._lock = threading.Condition()
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="dlx-checkpoints", daemon=True)
        self._thread.start()

    def submit(self, path: Path, state: dict[str, Any]) -> None:
        self._raise_if_failed()
        with self._lock:
            self._pending.pop(path, None)  # a replaced save moves to the back of the queue
            self._pending[path] = snapshot(state)
            self._lock.notify()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._lock.wait()
                if not self._pending:
                    return
                path = next(iter(self._pending))
                state = self._pending.pop(path)
            try:
                save(state, path)
            except BaseException as e:  # reported on the training thread at the next submit or close
                self._error = e

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise DlxError(f"could not write a checkpoint: {error}; the previous checkpoint is intact")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join()
        self._raise_if_failed()


class RunCheckpoints:
    """A run's best.pt and last.pt. last.pt is written when asked, but no sooner than `min_seconds` after the
    previous one unless forced (the last epoch, early stopping, a stop signal): an epoch of milliseconds would
    otherwise spend most of its time on the disk. The best state waits in memory and goes to disk just before
    the next last.pt, so best.pt is never older than the last.pt beside it: a kill between the two writes leaves a
    best.pt the resumed run reaches again, bit for bit."""

    def __init__(self, best: Path, last: Path, min_seconds: float, step: int):
        self.best_path, self.last_path, self.min_seconds = best, last, min_seconds
        self.writer = CheckpointWriter()
        self.pending_best: dict[str, Any] | None = None
        self.written_at = time.perf_counter()
        self.last_good = (last, step) if step else None  # the newest last.pt and its step, for error messages

    def new_best(self, state: dict[str, Any]) -> dict[str, Any]:
        """Keeps a snapshot of `state` for best.pt, and returns it."""
        self.pending_best = snapshot(state)
        return self.pending_best

    def save_last(self, state: Callable[[], dict[str, Any]], step: int, force: bool = False) -> None:
        """Writes last.pt from `state()` if it is due (its state is only gathered then)."""
        if not force and time.perf_counter() - self.written_at < self.min_seconds:
            return
        self.flush_best()
        self.writer.submit(self.last_path, state())
        self.last_good, self.written_at = (self.last_path, step), time.perf_counter()

    def flush_best(self) -> None:
        if self.pending_best is not None:
            self.writer.submit(self.best_path, self.pending_best)
            self.pending_best = None

    def close(self) -> None:
        self.writer.close()
