"""Checkpoints: a typed record (Checkpoint), written atomically (never a half-written file), loaded with
weights_only=True (never code). This module is the only one that knows the keys of a checkpoint file.

Writes go through a background thread so that a checkpoint costs the training loop only a copy of the
state in memory; `CheckpointWriter.close()` waits until everything queued is on disk. `RunCheckpoints`
decides when a run's best.pt and last.pt are written.
"""
from __future__ import annotations

import dataclasses
import io
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dlx.atomic import write_atomic
from dlx.data.base import DataSpec
from dlx.errors import DlxError

FORMAT = "dlx-checkpoint-2"
FIRST_FORMAT = "dlx-checkpoint-1"  # one optimizer, schedule and loss sum, unnamed; read as the group 'model'


@dataclass
class Checkpoint:
    """Everything a checkpoint holds: enough to rebuild the model without the data, and to continue training exactly."""

    config: dict[str, Any]  # the run's resolved config
    spec: dict[str, Any]  # the DataSpec's fields
    model: dict[str, Tensor]  # the plain module's weights (best.pt: the evaluated ones, the average's with train.ema)
    loop: dict[str, Any]  # the loop's LoopState: step, epoch, batch, best, ...
    optimizers: dict[str, dict[str, Any]] = field(default_factory=dict)  # per parameter group of the objective
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    rng: dict[str, Any] = field(default_factory=dict)  # torch's, the data order's (and CUDA's)
    standardizer: dict[str, Tensor] | None = None  # the train split's statistics, for new data at evaluation
    ema: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    # per group: the epoch's loss sum up to the last log point, and the losses since (resumed sums match to the bit)
    losses: dict[str, Tensor] = field(default_factory=dict)
    unlogged: dict[str, Tensor] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return self.loop["step"]

    @property
    def epoch(self) -> int:
        return self.loop["epoch"]

    @property
    def data_spec(self) -> DataSpec:
        return DataSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.spec.items()})

    def fields(self) -> dict[str, Any]:
        """The fields by name, not copied (dataclasses.asdict would deep-copy every tensor)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


TYPES = {"config": dict, "spec": dict, "model": dict, "loop": dict, "optimizers": dict, "schedules": dict, "rng": dict,
         "standardizer": (dict, type(None)), "ema": (dict, type(None)), "scaler": (dict, type(None)), "losses": dict,
         "unlogged": dict}
LOOP_NUMBERS = ("step", "epoch", "batch")


def _from_first_format(state: dict[str, Any]) -> dict[str, Any]:
    state = dict(state)
    for old, new in (("optimizer", "optimizers"), ("schedule", "schedules"), ("epoch_loss", "losses"),
                     ("unlogged", "unlogged")):
        if old in state:
            state[new] = {"model": state.pop(old)}
    return state


def _typed(state: dict[str, Any], path: Path) -> Checkpoint:
    """The record, or a DlxError naming what a hand edit or damage left missing or of the wrong type."""
    if state.get("format") == FIRST_FORMAT:
        state = _from_first_format(state)
    missing = [name for name in ("config", "spec", "model", "loop") if name not in state]
    wrong = [name for name, kind in TYPES.items() if name in state and not isinstance(state[name], kind)]
    loop = state.get("loop") if isinstance(state.get("loop"), dict) else {}
    wrong += [f"loop.{n}" for n in LOOP_NUMBERS if not isinstance(loop.get(n), int) or isinstance(loop.get(n), bool)]
    if isinstance(state.get("model"), dict) and not all(isinstance(v, Tensor) for v in state["model"].values()):
        wrong.append("model")
    if missing or wrong:
        what = f"no {', '.join(missing)}" if missing else f"{', '.join(wrong)} of the wrong type"
        raise DlxError(f"{path}: a damaged dlx checkpoint ({what}); it cannot be used")
    return Checkpoint(**{name: state[name] for name in TYPES if name in state})


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


def save(checkpoint: Checkpoint, path: Path) -> None:
    _save_state(checkpoint.fields(), path)


def _save_state(state: dict[str, Any], path: Path) -> None:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    write_atomic(path, buffer.getvalue())


def load(path: Path, map_location: str | torch.device = "cpu") -> Checkpoint:
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
    if not isinstance(state, dict) or state.get("format") not in (FORMAT, FIRST_FORMAT):
        raise DlxError(f"{path}: not a dlx checkpoint (no '{FORMAT}' marker)")
    return _typed(state, path)


def loop_position(path: Path) -> dict[str, Any] | None:
    """The loop state of a checkpoint (step, epoch, batch, ...) read without its weights (memory-mapped), or None
    when the file is missing or unreadable."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return dict(state["loop"])
    except Exception:  # noqa: BLE001  torch.load on a half-written or foreign file raises errors of many kinds
        return None


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

    def submit(self, path: Path, checkpoint: Checkpoint) -> None:
        self._raise_if_failed()
        with self._lock:
            self._pending.pop(path, None)  # a replaced save moves to the back of the queue
            self._pending[path] = snapshot(checkpoint.fields())
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
                _save_state(state, path)
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
        self.pending_best: Checkpoint | None = None
        self.written_at = time.perf_counter()
        self.last_good = (last, step) if step else None  # the newest last.pt and its step, for error messages

    def new_best(self, checkpoint: Checkpoint) -> Checkpoint:
        """Keeps a snapshot of `checkpoint` for best.pt, and returns it."""
        self.pending_best = Checkpoint(**snapshot(checkpoint.fields()))
        return self.pending_best

    def save_last(self, state: Callable[[], Checkpoint], step: int, force: bool = False) -> None:
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
