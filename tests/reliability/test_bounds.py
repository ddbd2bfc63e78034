"""Nothing a user asks for is unbounded, and a launcher or a writer thread adds no traceback (issue #19).

Every count, range and size typed on the command line or in a sweep file is checked against dlx.limits before any
work starts: one error line naming the limit, exit 2, nothing written, at once (not a hang or an exhausted memory).
`dlx train --nproc 2` with a bad config says so once, before torchrun starts. TensorBoard's writer thread failing on
a full disk ends as dlx's one line about the disk, with no thread traceback."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import EXPERIMENTS, ROOT, fast
from tests.reliability.test_config_values import dlx, refused, sets
from tests.sweeps import write_sweep

pytestmark = pytest.mark.usefixtures("one_thread")

GEOMETRIC = {"optimizer.lr": {"grid": "geometric", "low": 0.001, "high": 0.1, "factor": 1.0000000001}}
SWEEPS = {  # the sweep file's changes, and what the error line says
    "a geometric grid with a factor of 1.0000000001": ({"space": GEOMETRIC}, "46,051,698,052 values, more than the 100,000"),
    "a geometric grid to infinity": ({"space": {"optimizer.lr": {**GEOMETRIC["optimizer.lr"], "high": 1e308}}},
                                     "too many to count"),
    "a batch-size grid up to 10^12": ({"method": "grid", "trials": None, "space": {"train.batch_size": {"low": 1, "high": 10**12}}},
                                      "method grid: 1,000,000,000,000 points, more than the 100,000"),
    "two parameters, each within the limit": ({"method": "grid", "trials": None,
                                               "space": {"model.dropout": {"low": 0.0, "high": 0.5, "step": 0.001},
                                                         "optimizer.lr": {"low": 0.001, "high": 0.1, "step": 0.0001}}},
                                              "method grid: 496,491 points"),  # 501 x 991
}


def quick_refusal(tmp_path: Path, monkeypatch, *args, expect: str) -> None:
    """The command is refused in one line naming the limit, within seconds, and leaves the folder as it was."""
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    started = time.monotonic()
    refused(dlx(*args), expect)
    assert time.monotonic() - started < 30  # generous for a loaded machine: the unbounded work would take hours
    assert sorted(tmp_path.rglob("*")) == before


@pytest.mark.parametrize(("changes", "expect"), SWEEPS.values(), ids=SWEEPS.keys())
def test_a_sweep_space_too_large_to_list_is_refused_before_any_trial(tmp_path, monkeypatch, changes, expect):
    sweep = write_sweep(tmp_path, **changes)
    quick_refusal(tmp_path, monkeypatch, "sweep", sweep, "--runs-dir", tmp_path / "runs", expect=expect)


COMMANDS = {  # arguments after the command's own input, and what the error line says
    "reject margins in a trillion steps": (["evaluate", "RUN", "--reject-margin", "0:1:1e-12"],
                                           "1,000,000,000,001 margins, more than the 100,000"),
    "an lr-find ramp of a billion steps": (["lr-find", EXPERIMENTS / "iris_mlp.yaml", "--steps", 10**9],
                                           "--steps: 1,000,000,000 steps, more than the 100,000"),
    "a billion characters by beam search": (["generate", "RUN", "--strategy", "beam", "--max-new-tokens", 10**9],
                                            "--max-new-tokens: 1,000,000,000 characters per sample"),
    "a billion sampled characters": (["generate", "RUN", "--max-new-tokens", 10**9], "--max-new-tokens"),
    "a billion samples": (["generate", "RUN", "--num-samples", 10**9], "--num-samples: 1,000,000,000 samples"),
    "samples that fill the memory together": (["generate", "RUN", "--num-samples", 1000, "--max-new-tokens", 10**6],
                                              "--num-samples x --max-new-tokens: 1,000,000,000 characters held"),
    "a million training processes": (["train", EXPERIMENTS / "iris_mlp.yaml", "--nproc", 10**6],
                                     "--nproc: 1,000,000 processes, more than the 1,024"),
    "beams that fill the memory together": (["generate", "RUN", "--strategy", "beam", "--beam-width", 1000,
                                             "--max-new-tokens", 10**6], "--beam-width x --max-new-tokens"),
}


@pytest.mark.parametrize(("args", "expect"), COMMANDS.values(), ids=COMMANDS.keys())
def test_a_count_too_large_for_the_machine_is_refused_before_any_work(tmp_path, monkeypatch, args, expect):
    # RUN is a folder that does not exist: the limits are checked before any run is read
    quick_refusal(tmp_path, monkeypatch, *[tmp_path / "no-run" if a == "RUN" else a for a in args], expect=expect)


def test_counts_within_the_limits_still_work():
    from dlx import analysis, limits
    from dlx.sweep import space

    assert analysis.parse_margins(["0:1:0.0001"])[-1] == 1.0 and len(analysis.parse_margins(["0:1:0.0001"])) == 10_001
    lr = space.parse({"lr": {"grid": "geometric", "low": 1e-6, "high": 1.0, "factor": 1.001}})["lr"]
    assert lr.count() == len(lr.grid()) <= limits.GRID_VALUES


@pytest.mark.parametrize(("override", "expect"), [("optimizer.lr=-1", "optimizer.lr"), ("model.name=mpl", "did you mean")])
def test_nproc_with_a_bad_config_is_one_line_before_torchrun_starts(tmp_path, monkeypatch, override, expect):
    quick_refusal(tmp_path, monkeypatch, "train", EXPERIMENTS / "iris_mlp.yaml", "--nproc", 2, "--runs-dir",
                  tmp_path / "runs", *sets(override), expect=expect)


def test_a_failed_rank_ends_the_launcher_without_a_traceback(tmp_path):
    """A mistake torchrun's ranks find themselves (here a run to resume that is not there): every rank runs the same
    command, so rank 0 says it once, and the launcher adds no ChildFailedError traceback."""
    done = subprocess.run([sys.executable, "-m", "dlx", "train", "--nproc", "2", "--resume", str(tmp_path / "none")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert done.returncode == 2 and len(errors) == 1 and errors[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and "ChildFailedError" not in done.stderr, done.stderr


def test_tensorboards_writer_thread_failing_on_a_full_disk_is_one_line(tmp_path, monkeypatch, capfd):
    from tensorboard.summary.writer import record_writer

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(record_writer.RecordWriter, "write", full)
    monkeypatch.setattr(threading, "excepthook", threading.__excepthook__)  # Python's printer, not pytest's catcher
    result = dlx("train", EXPERIMENTS / "iris_mlp.yaml", "--quiet", "--runs-dir", tmp_path / "runs",
                 *sets(*(o for o in fast("train.epochs=2") if not o.startswith("model."))))
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]  # after progress lines
    assert errors == result.stderr.splitlines()[-1:] and "cannot write to" in errors[0], result.stderr
    assert "No space left on device" in errors[0], errors
    stderr = capfd.readouterr().err + result.stderr
    assert "Traceback" not in stderr and "Exception in thread" not in stderr, stderr
    assert (tmp_path / "runs" / "iris_mlp" / "config.yaml").is_file()  # what was written is kept
    assert yaml.safe_load((tmp_path / "runs" / "iris_mlp" / "config.yaml").read_text())["name"] == "iris_mlp"
