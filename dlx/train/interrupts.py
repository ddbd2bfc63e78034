"""Ctrl-C and SIGTERM stop training at the next step boundary, so the saved state is consistent."""
from __future__ import annotations

import signal
from contextlib import contextmanager


class Interrupted(Exception):
    """Training stopped by a signal after saving a checkpoint; exit with 128 + signal number."""

    def __init__(self, signum: int, resume_hint: str):
        self.signum, self.resume_hint = signum, resume_hint
        super().__init__(f"interrupted by {signal.Signals(signum).name}; {resume_hint}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class StopFlag:
    """Set by SIGINT/SIGTERM; a second Ctrl-C while stopping raises KeyboardInterrupt at once."""

    def __init__(self):
        self.signum: int | None = None

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum


@contextmanager
def catch_stop_signals():
    """Yields a StopFlag; the previous handlers come back on exit. Outside the main thread, a no-op flag."""
    flag = StopFlag()
    try:
        previous = {s: signal.signal(s, flag._handle) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # signal handlers can only be set from the main thread
        yield flag
        return
    try:
        yield flag
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
