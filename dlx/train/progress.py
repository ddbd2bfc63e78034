"""What the user sees while a run trains: a rich live display on a terminal, plain lines otherwise."""
from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


REDRAW_SECONDS = 0.5  # a redraw costs a millisecond or more: twice a second keeps a fast loop fast


def _fmt(values: dict[str, float]) -> str:
    return "  ".join(f"{k} {v:.4g}" for k, v in values.items() if k != "epoch")


class PlainProgress:
    """One line per evaluation: readable in logs and CI."""

    def __init__(self, console: Console, total_steps: int, epochs: int, start_step: int = 0):
        self.console, self.epochs = console, epochs
        self.started = time.perf_counter()

    def step(self, step: int, epoch: int, loss: float, lr: float) -> None:
        pass  # plain output shows epochs only: a line per step would flood a log

    def epoch(self, epoch: int, values: dict[str, float]) -> None:
        elapsed = time.perf_counter() - self.started
        self.console.print(f"epoch {epoch}/{self.epochs}  {_fmt(values)}  ({elapsed:.1f}s)", highlight=False,
                           soft_wrap=True)

    def close(self) -> None:
        pass


class LiveProgress:
    """A progress bar with step, epoch, loss, lr, the last validation metrics and the ETA."""

    def __init__(self, console: Console, total_steps: int, epochs: int, start_step: int = 0):
        self.epochs = epochs
        self.bar = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[val]}"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, auto_refresh=False, transient=False,
        )
        self.bar.start()
        self.task = self.bar.add_task("train", total=total_steps, completed=start_step, epoch=0, epochs=epochs,
                                      loss="-", lr="-", val="")
        self.last_refresh = 0.0

    def step(self, step: int, epoch: int, loss: float, lr: float) -> None:
        self.bar.update(self.task, completed=step, epoch=epoch + 1, loss=f"{loss:.4f}", lr=f"{lr:.3g}")
        self._redraw()

    def epoch(self, epoch: int, values: dict[str, float]) -> None:
        self.bar.update(self.task, epoch=epoch, val=_fmt({k: v for k, v in values.items() if k.startswith("val/")}))
        self._redraw()

    def _redraw(self) -> None:
        """At most every REDRAW_SECONDS; the fields are always current."""
        now = time.perf_counter()
        if now - self.last_refresh > REDRAW_SECONDS:
            self.bar.refresh()
            self.last_refresh = now

    def close(self) -> None:
        self.bar.refresh()
        self.bar.stop()


def make_progress(console: Console, quiet: bool, total_steps: int, epochs: int, start_step: int = 0):
    kind = LiveProgress if console.is_terminal and not quiet else PlainProgress
    return kind(console, total_steps, epochs, start_step)
