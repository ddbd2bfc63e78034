"""A failing disk (ENOSPC) while a checkpoint, the metrics log, the config or an evaluation is written: one clear
line and exit 2, the previous checkpoint stays valid, and the run resumes to the same end as an unbroken one."""
from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlx.cli import app
from dlx.config import load
from dlx.run import checkpoint
from dlx.train import loop
from tests.reliability.procs import COMMON, DIGITS, assert_same_run, error_line, sets

RECIPE = [*COMMON, "optimizer.name=sgd", "optimizer.momentum=0.9", "optimizer.lr=0.05", "schedule.name=one_cycle",
          "train.epochs=6", "train.patience=null"]
runner = CliRunner()


def disk_full(path: str = "") -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path or None)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    return loop.start(load(DIGITS, [*RECIPE, "name=straight"]), tmp_path_factory.mktemp("reference"), quiet=True)[0].path


def train(runs: Path):
    return runner.invoke(app, ["train", DIGITS, *sets(RECIPE), "--name", "r", "--runs-dir", str(runs), "--quiet"])


def fail_on(monkeypatch, what: str, nth: int) -> None:
    """os.fsync raises ENOSPC on the nth sync of a temporary file whose name contains `what`."""
    real, seen = os.fsync, []

    def fsync(fd: int) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}")
        if what in name:
            seen.append(name)
            if len(seen) == nth:
                raise disk_full(name)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def test_checkpoints_reach_the_disk_in_the_order_submitted(tmp_path, monkeypatch):
    """best.pt before the last.pt that names its epoch: a kill between the two never leaves a last.pt whose best
    epoch is missing from best.pt (the writer used to take the newest first)."""
    busy, go, written, real = threading.Event(), threading.Event(), [], checkpoint._save_state

    def slow_save(state, path):
        busy.set()
        go.wait()
        written.append((path.name, state["loop"]["epoch"]))
        real(state, path)

    def at(epoch: int) -> checkpoint.Checkpoint:
        return checkpoint.Checkpoint(config={}, spec={}, model={}, loop={"step": epoch, "epoch": epoch, "batch": 0})

    monkeypatch.setattr(checkpoint, "_save_state", slow_save)
    writer = checkpoint.CheckpointWriter()
    writer.submit(tmp_path / "last.pt", at(1))
    busy.wait()  # the disk is slow with epoch 1's last.pt; epoch 2 queues its best.pt, then last.pt
    writer.submit(tmp_path / "best.pt", at(2))
    writer.submit(tmp_path / "last.pt", at(2))
    go.set()
    writer.close()
    assert written == [("last.pt", 1), ("best.pt", 2), ("last.pt", 2)]


def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_one_and_the_run_resumes(tmp_path, monkeypatch,
                                                                                           reference):
    fail_on(monkeypatch, ".last.pt.", 3)
    written, save = [], checkpoint._save_state  # the writer may merge queued saves: which epochs reached the disk

    def recording(state, path):
        save(state, path)
        written.append((path.name, state["loop"]["epoch"]))

    monkeypatch.setattr(checkpoint, "_save_state", recording)
    line = error_line(train(tmp_path))
    assert "could not write a checkpoint" in line and "No space left on device" in line
    run = tmp_path / "r"
    kept = [epoch for name, epoch in written if name == "last.pt"]
    assert len(kept) == 2 and checkpoint.load(run / "checkpoints" / "last.pt").epoch == kept[-1]
    assert not [p for p in (run / "checkpoints").iterdir() if p.suffix == ".tmp"]  # no half-written file left
    monkeypatch.undo()
    assert runner.invoke(app, ["train", "--resume", str(run), "--quiet"]).exit_code == 0
    assert_same_run(run, reference)


class TornWrites:
    """A file on a disk that fills up at its nth write: half of that write gets there, then ENOSPC."""

    def __init__(self, file, nth: int):
        self.file, self.writes_left = file, nth

    def write(self, text: str) -> int:
        self.writes_left -= 1
        if self.writes_left:
            return self.file.write(text)
        self.file.write(text[: len(text) // 2])
        self.file.flush()
        raise disk_full(self.file.name)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def test_a_full_disk_while_logging_metrics_says_so_and_the_run_resumes_past_the_torn_line(tmp_path, monkeypatch,
                                                                                        reference):
    real_open = Path.open

    def open_(self, mode="r", *args, **kwargs):
        file = real_open(self, mode, *args, **kwargs)
        return TornWrites(file, 4) if self.name == "metrics.jsonl" and mode == "a" else file  # the 4th epoch's line

    monkeypatch.setattr(Path, "open", open_)
    line = error_line(train(tmp_path))
    run = tmp_path / "r"
    assert f"cannot write to {run / 'metrics.jsonl'} (No space left on device)" in line
    assert f"resume with: dlx train --resume {run}" in line
    assert not (run / "metrics.jsonl").read_text().endswith("\n")  # the torn line is there
    monkeypatch.undo()
    assert runner.invoke(app, ["train", "--resume", str(run), "--quiet"]).exit_code == 0
    assert_same_run(run, reference)


def test_a_full_disk_before_training_starts_is_one_line(tmp_path, monkeypatch):
    fail_on(monkeypatch, ".config.yaml.", 1)
    line = error_line(train(tmp_path))
    assert "config.yaml" in line and "No space left on device" in line
    assert list(tmp_path.iterdir()) == []  # no half-made run folder


def test_a_full_disk_under_evaluate_is_one_line_and_the_run_is_untouched(tmp_path, monkeypatch, reference):
    before = {p.name: p.read_bytes() for p in reference.iterdir() if p.is_file()}
    fail_on(monkeypatch, ".evaluation.json.", 1)
    line = error_line(runner.invoke(app, ["evaluate", str(reference)]))
    assert "No space left on device" in line
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in reference.iterdir() if p.is_file() and p.name in before}
    assert after == before
