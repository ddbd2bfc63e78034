"""Ctrl-C and SIGTERM through the real command line: a checkpoint at the next step, "resume with: ..." printed,
exit 130 or 143, and the resumed run (from the middle of an epoch) ends as the uninterrupted one."""
from __future__ import annotations

import signal

import pytest
from typer.testing import CliRunner

from dlx.cli import app
from dlx.config import load
from dlx.run import checkpoint
from dlx.train import loop
from tests.reliability.procs import DIGITS, SGD, assert_same_run, kill_after, sets, start


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_saves_says_how_to_resume_and_exits_128_plus_its_number(tmp_path, signum):
    run, log = tmp_path / "runs" / "stopped", tmp_path / "log"
    proc = start(["train", DIGITS, *sets(SGD), "--name", "stopped", "--runs-dir", str(run.parent), "--quiet"], log)
    assert kill_after(proc, run, 3, 0.02, signum) == 128 + signum
    assert f"resume with: dlx train --resume {run}" in log.read_text()
    assert "Traceback" not in log.read_text()
    assert checkpoint.load(run / "checkpoints" / "last.pt").step >= 3 * 5  # 5 steps an epoch

    result = CliRunner().invoke(app, ["train", "--resume", str(run), "--quiet"])
    assert result.exit_code == 0, result.output
    reference, _ = loop.start(load(DIGITS, [*SGD, "name=straight"]), tmp_path / "reference", quiet=True)
    assert_same_run(run, reference.path)
