"""Training in a separate process, and the faults done to it: SIGKILL after a number of epochs, a stop signal,
a disk that stalls in the middle of a checkpoint write; then the run folder compared with an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from dlx.run.folder import Run
from dlx.run import checkpoint
from tests.conftest import EXPERIMENTS, ROOT

DIGITS = str(EXPERIMENTS / "digits_cnn.yaml")
# one thread in every process: the subprocess and the in-process reference must do the same arithmetic
COMMON = ["model.name=mlp", "model.sizes=16", "model.dropout=0.3", "data.augment.shift=1", "train.batch_size=256",
          "eval.metrics=[accuracy]", "train.device=cpu", "train.threads=1",
          "train.checkpoint_seconds=0"]  # a last.pt every epoch: the kills land between and inside many writes
# SGD with momentum and a schedule stepped every optimizer step
SGD = [*COMMON, "optimizer.name=sgd", "optimizer.momentum=0.9", "optimizer.lr=0.05", "schedule.name=one_cycle",
       "train.epochs=40", "train.patience=null"]
# Adam with a schedule driven by the validation loss, and early stopping on it (stops after about 16 epochs)
ADAM = [*COMMON, "optimizer.name=adam", "optimizer.lr=0.05", "schedule.name=reduce_on_plateau", "schedule.patience=1",
        "train.monitor=val/loss", "train.patience=4", "train.epochs=60"]


def sets(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def start(args: list[str], log: Path, wrapper: list[str] | None = None) -> subprocess.Popen:
    """`python -m dlx ARGS` (or a wrapper module that patches something first), its output in `log`."""
    command = [sys.executable, "-m", *(wrapper or ["dlx"]), *args]
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def wait_until(condition, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the training ended (exit {proc.returncode}) before the fault could be injected")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the training")
        time.sleep(0.005)


def lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def kill_after(proc: subprocess.Popen, run: Path, epochs: int, delay: float, signum: int = signal.SIGKILL) -> int:
    """Send `signum` `delay` seconds after metrics.jsonl holds `epochs` lines; returns the exit code."""
    wait_until(lambda: lines(run / "metrics.jsonl") >= epochs, proc)
    time.sleep(delay)
    os.kill(proc.pid, signum)
    return proc.wait(timeout=120)


def error_line(result) -> str:
    """A CliRunner result's last line on stderr (--quiet prints a line per epoch before it): exit 2 and the one
    error line, no traceback."""
    *_, last = result.stderr.splitlines()
    assert result.exit_code == 2 and last.startswith("error: ") and result.stderr.count("error: ") == 1, result.output
    assert "Traceback" not in result.output
    return last


def assert_valid_checkpoints(run: Path) -> None:
    """Whatever a kill left: every checkpoint there loads (never a half-written file)."""
    for path in (run / "checkpoints").glob("*.pt"):
        state = checkpoint.load(path)
        assert all(torch.isfinite(t).all() for t in state.model.values() if t.is_floating_point())


def assert_same_run(run: Path, reference: Path) -> None:
    """Bitwise: the history, the loop state, and every tensor of best.pt and last.pt."""
    a, b = Run.open(run), Run.open(reference)
    assert a.history() == b.history()
    for which in ("best", "last"):
        got, want = checkpoint.load(a.checkpoint(which)), checkpoint.load(b.checkpoint(which))
        assert got.loop == want.loop
        for part in ("model", "optimizers", "schedules", "losses", "unlogged"):
            assert_equal(getattr(got, part), getattr(want, part), f"{which}.pt {part}")
    summary, expected = (json.loads((p / "summary.json").read_text()) for p in (run, reference))
    for key in ("metrics", "best_epoch", "epochs", "steps", "early_stopped", "monitor"):
        assert summary[key] == expected[key], key


def assert_equal(got, want, where: str) -> None:
    if isinstance(want, torch.Tensor):
        assert torch.equal(got, want), where
    elif isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for key in want:
            assert_equal(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            assert_equal(g, w, f"{where}[{i}]")
    else:
        assert got == want, where
