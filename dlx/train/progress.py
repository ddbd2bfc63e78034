"""What the user sees while a run trains: a rich live display on a terminal, plain lines otherwise."""
from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text


REDRAW_SECONDS = 0.5  # a redraw costs a millisecond or more: twice a second keeps a fast loop fast
HEARTBEAT_SECONDS = 30.0  # plain output says where training is at least this often, however long an epoch takes


def _fmt(values: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in values.items() if k != "epoch")


class PlainProgress:
    """One line per evaluation, readable in logs and CI, and a line on the steps whenever HEARTBEAT_SECONDS pass
    without one (a long epoch would otherwise look like a hung run)."""

    def __init__(self, console: Console, total_steps: int, epochs: int, start_step: int = 0):
        self.console, self.total_steps, self.epochs = console, total_steps, epochs
        self.started = self.said = time.perf_counter()
        self.where = f"step {start_step}/{total_steps}"  # the latest step reported, for the heartbeat
        self.lock = threading.Lock()  # the heartbeat's thread and the loop's both print
        self.closed = threading.Event()
        self.heartbeat = threading.Thread(target=self._beat, name="dlx-progress-heartbeat", daemon=True)
        self.heartbeat.start()

    def step(self, step: int, epoch: int, loss: float, lr: float) -> None:
        self.where = f"epoch {epoch + 1}/{self.epochs}  step {step}/{self.total_steps}  loss {loss:.4g}  lr {lr:.3g}"

    def epoch(self, epoch: int, values: dict[str, float]) -> None:
        self._say(f"epoch {epoch}/{self.epochs}  {_fmt(values)}")

    def _beat(self) -> None:
        while not self.closed.wait(max(0.0, self.said + HEARTBEAT_SECONDS - time.perf_counter())):
            if time.perf_counter() - self.said >= HEARTBEAT_SECONDS:
                self._say(self.where)

    def _say(self, line: str) -> None:
        with self.lock:
            self.said = time.perf_counter()
            self.console.print(f"{line}  ({self.said - self.started:.1f}s)", highlight=False, soft_wrap=True)

    def close(self) -> None:
        self.closed.set()
        self.heartbeat.join()


class _BarAndStatus(Progress):
    """The bar on one line and the numbers on the next: on one line at 80-120 columns the numbers left the bar no
    room, and rich squeezed it to nothing."""

    status = Text("")  # a class default: rich draws once while the instance is being built

    def get_renderables(self):
        yield self.make_tasks_table(self.tasks)
        yield self.status


class LiveProgress:
    """A progress bar with epoch, steps, elapsed time and ETA; below it the loss, lr and last validation metrics."""

    def __init__(self, console: Console, total_steps: int, epochs: int, start_step: int = 0):
        self.epochs = epochs
        self.bar = _BarAndStatus(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(bar_width=None),
            MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=console, auto_refresh=False, transient=False, expand=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("train", total=total_steps, completed=start_step, epoch=0, epochs=epochs)
        self.train, self.val = "loss -  lr -", ""
        self.last_refresh = 0.0

    def step(self, step: int, epoch: int, loss: float, lr: float) -> None:
        self.bar.update(self.task, completed=step, epoch=epoch + 1)
        self.train = f"loss {loss:.4f}  lr {lr:.3g}"
        self._redraw()

    def epoch(self, epoch: int, values: dict[str, float]) -> None:
        self.bar.update(self.task, epoch=epoch)
        self.val = _fmt({k: v for k, v in values.items() if k.startswith("val/")})
        self._redraw()

    def _redraw(self, force: bool = False) -> None:
        """At most every REDRAW_SECONDS; the fields are always current."""
        now = time.perf_counter()
        if force or now - self.last_refresh > REDRAW_SECONDS:
            self.bar.status = Text("  ".join(part for part in (self.train, self.val) if part), overflow="fold")
            self.bar.refresh()
            self.last_refresh = now

    def close(self) -> None:
        self._redraw(force=True)
        self.bar.stop()


def make_progress(console: Console, quiet: bool, total_steps: int, epochs: int, start_step: int = 0):
    kind = LiveProgress if console.is_terminal and not quiet else PlainProgress
    return kind(console, total_steps, epochs, start_step)
