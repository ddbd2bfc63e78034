"""The run folder: created once (never overwritten), found again by path, and written to by one owner.

runs/<name>/
  config.yaml          the resolved config; `dlx train runs/<name>/config.yaml` reproduces the run
  checkpoints/         best.pt, last.pt
  metrics.jsonl        one line per evaluation
  summary.json         final metrics, time, device, versions
  events.out.tfevents  TensorBoard
  .dlx.lock            held by the one process writing to the run (see lock.py)
"""
from __future__ import annotations

import contextlib
import json
import shutil
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

from dlx.atomic import TEMPORARY, write_atomic, write_json
from dlx.errors import DlxError
from dlx.run import lock


# scalars reach TensorBoard's writer in batches, this often and at close (the writer itself flushes to disk every
# 10 s): its writer thread, woken for every point, would cost a loop of millisecond steps a tenth of its time
SCALAR_BATCH_SECONDS = 10.0


def _quiet_event_writer_threads() -> None:
    """TensorBoard's writer thread keeps a failed write (a full or read-only disk) and the run's thread raises it at
    the next write, flush or close, where it ends as one line; the thread itself prints no traceback for it."""
    from tensorboard.summary.writer.event_file_writer import _AsyncWriterThread

    previous = threading.excepthook
    if getattr(previous, "quiets", None) is _AsyncWriterThread:
        return

    def excepthook(args: threading.ExceptHookArgs) -> None:
        if not (isinstance(args.thread, _AsyncWriterThread) and isinstance(args.exc_value, OSError)):
            previous(args)

    excepthook.quiets = _AsyncWriterThread
    threading.excepthook = excepthook


def _entry(line: str) -> dict[str, Any] | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and "step" in entry else None


def is_run(path: Path) -> bool:
    """A folder `dlx train` made, told by what only dlx writes there: its lock file, summary.json, a line of
    metrics.jsonl or a checkpoint with dlx's format marker. A config.yaml beside a checkpoints/ folder is anybody's."""
    if path.is_symlink() or not (path / "config.yaml").is_file():
        return False
    return (_marked(path / lock.NAME) or _is_summary(path / "summary.json") or bool(Run(path).history())
            or any(_is_checkpoint(p) for p in (path / "checkpoints").glob("*.pt")))


def _marked(path: Path) -> bool:
    try:
        return path.read_text(errors="replace").startswith(lock.MARK)
    except OSError:
        return False


def _is_summary(path: Path) -> bool:
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and {"run", "metrics", "epochs"} <= summary.keys()


def _is_checkpoint(path: Path) -> bool:
    """A torch.save archive whose pickle holds dlx's format marker (read without loading torch or the weights)."""
    from dlx.run.checkpoint import FORMAT

    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
            return bool(pickles) and FORMAT.encode() in archive.read(pickles[0])
    except (OSError, zipfile.BadZipFile):
        return False


def delete(path: Path, runs: list[Path] | None = None, owned: bool = False) -> None:
    """Delete the run folder `path` holding its lock, and the lock of every other run in `runs` (a cross-validation's
    folds): a run that another process is writing to is refused, and then nothing is deleted. `owned`: the caller
    has told the folder by its lock file's holder (a sweep trial's own run, killed before its config.yaml)."""
    if runs is None and not owned and not is_run(path):
        raise DlxError(f"{path}: not a dlx run folder; nothing deleted")
    held: list[Run] = []
    try:
        for folder in [path, *(runs or [])]:
            held.append(Run(folder).claim("delete it"))
        shutil.rmtree(path)
    finally:
        for run in held:
            run.close()


class Run:
    def __init__(self, path: Path):
        self.path = path
        self.lock = lock.RunLock(path)
        self._writer = None
        self._metrics_file = None
        self._purge_step: int | None = None
        self._scalars: list[tuple[str, float, int, float]] = []  # (tag, value, step, wall time) not yet handed over
        self._scalars_sent = time.monotonic()

    @classmethod
    def create(cls, root: Path, name: str) -> Run:
        """A new folder runs/<name>, or <name>-2, -3, ... when the name is taken."""
        root.mkdir(parents=True, exist_ok=True)
        for n in range(1, 10_000):
            path = root / (name if n == 1 else f"{name}-{n}")
            try:
                path.mkdir()  # atomic: two processes cannot both get the same folder
            except FileExistsError:
                continue
            (path / "checkpoints").mkdir()
            run = cls(path)
            run.claim("train")  # nobody else can have it yet: the folder is new
            return run
        raise DlxError(f"{root}: too many runs named '{name}'; choose another --name")

    @classmethod
    def open(cls, path: str | Path) -> Run:
        path = Path(path)
        if not (path / "config.yaml").is_file():
            raise DlxError(f"{path}: not a dlx run folder (no config.yaml); see `ls runs/`")
        return cls(path)

    def claim(self, doing: str) -> Run:
        """Hold the run's lock until close(); a DlxError saying who writes to it when another process does.
        `doing` says what was refused: 'cannot <doing>'."""
        self.lock.acquire(doing)
        return self

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def checkpoint(self, which: str) -> Path:
        return self.path / "checkpoints" / f"{which}.pt"

    @property
    def writer(self):
        """The run's TensorBoard writer, opened on first use."""
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            _quiet_event_writer_threads()
            # a queue long enough that a batch of scalars never waits for the writer thread
            self._writer = SummaryWriter(log_dir=str(self.path), max_queue=1000, flush_secs=10,
                                         purge_step=self._purge_step)
        return self._writer

    def log(self, step: int, values: dict[str, float]) -> None:
        """One evaluation: a line in metrics.jsonl and a point per value in TensorBoard."""
        if self._metrics_file is None:  # open for the run: opening it for every line costs an epoch of milliseconds
            self._metrics_file = self.metrics_path.open("a", encoding="utf-8")
        self._metrics_file.write(json.dumps({"step": step, **values}) + "\n")
        self._metrics_file.flush()  # a line is in the file (the OS's) as soon as it is logged
        for key, value in values.items():
            if key != "epoch":
                self.scalar(key, value, step)

    def scalar(self, tag: str, value: float, step: int) -> None:
        """A point of a TensorBoard curve, handed to the writer with others (see SCALAR_BATCH_SECONDS)."""
        self._scalars.append((tag, value, step, time.time()))
        if time.monotonic() - self._scalars_sent > SCALAR_BATCH_SECONDS:
            self.send_scalars()

    def send_scalars(self) -> None:
        """One event per step, holding every value of that step (as SummaryWriter.add_scalar writes each)."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        steps: dict[int, tuple[float, list[Summary.Value]]] = {}
        for tag, value, step, wall_time in self._scalars:
            steps.setdefault(step, (wall_time, []))[1].append(Summary.Value(tag=tag, simple_value=value))
        for step, (wall_time, values) in steps.items():
            self.writer.file_writer.add_summary(Summary(value=values), step, wall_time)
        self._scalars.clear()
        self._scalars_sent = time.monotonic()

    def history(self) -> list[dict[str, Any]]:
        """The evaluations logged; a line cut short (a kill or a full disk in the middle of a write) is left out."""
        if not self.metrics_path.is_file():
            return []
        return [entry for line in self.metrics_path.read_text(errors="replace").splitlines() if (entry := _entry(line))]

    def truncate_history(self, step: int) -> None:
        """Forget evaluations after `step` here and in TensorBoard: a resumed run logs them again."""
        self._purge_step = step
        if self._metrics_file is not None:  # the file is replaced below: later lines go to the new one
            self._metrics_file.close()
            self._metrics_file = None
        kept = [h for h in self.history() if h["step"] <= step]
        write_atomic(self.metrics_path, "".join(json.dumps(h) + "\n" for h in kept).encode())

    def discard_partial_writes(self) -> None:
        """Delete the temporary files of writes a kill cut short (write_atomic's): the files they were to replace
        are intact."""
        for folder in (self.path, self.path / "checkpoints"):
            for partial in folder.glob(".*.tmp"):
                if TEMPORARY.match(partial.name):
                    partial.unlink(missing_ok=True)

    def write_json(self, name: str, data: dict[str, Any]) -> Path:
        return write_json(self.path / name, data)

    def read_json(self, name: str) -> dict[str, Any]:
        path = self.path / name
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise DlxError(f"{path}: cannot read ({e})") from None

    def close(self) -> None:
        if self._metrics_file is not None:
            self._metrics_file.close()
            self._metrics_file = None
        try:
            self._close_writer()
        finally:
            self.lock.release()

    def _close_writer(self) -> None:
        """Hand over the last scalars and close TensorBoard's writer; a write its thread could not do (a full or
        read-only disk) ends here as one line."""
        if self._writer is None and not self._scalars:
            return
        try:
            if self._scalars:
                self.send_scalars()
            self._writer.flush()  # raises what the writer thread kept
            self._writer.close()
        except OSError as e:
            if self._writer is not None:  # None: the disk failed as the writer opened
                with contextlib.suppress(OSError):  # the disk already failed: only let the thread and the file go
                    self._writer.close()
            raise DlxError(f"cannot write to {e.filename or self.path} ({e.strerror or e}); TensorBoard's events "
                           f"are incomplete") from None
        finally:
            self._writer = None
