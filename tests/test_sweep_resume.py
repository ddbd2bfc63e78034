"""A sweep killed mid-trial (SIGKILL, no chance to clean up) resumes with --resume and ends with exactly
the asked number of trials: the interrupted trial runs again with its values, none is lost or run twice."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from optuna.trial import TrialState
from typer.testing import CliRunner

from dlx.cli import app
from dlx.sweep.study import INTERRUPTED, alive, counted
from tests.conftest import ROOT
from tests.sweeps import journal_study, param_sets, write_sweep

TRIALS, EPOCHS = 3, 30


def _mid_trial(folder: Path) -> bool:
    """Trial 1 has logged an epoch and not finished."""
    run = folder / "trial-0001"
    return (run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").stat().st_size > 0 and not (run / "summary.json").exists()


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_killed_sweep_resumes_to_exactly_the_asked_trials(tmp_path):
    sweep = write_sweep(tmp_path, trials=TRIALS, epochs=EPOCHS, set=["model.name=mlp", "model.sizes=64",
                                                                     "train.device=cpu", "train.patience=null"])
    runs = tmp_path / "runs"
    folder = runs / "tiny"
    process = subprocess.Popen([sys.executable, "-m", "dlx", "sweep", str(sweep), "--runs-dir", str(runs)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: _mid_trial(folder) or process.poll() is not None, 90, "trial 1 to start training")
        process.send_signal(signal.SIGKILL)  # the sweep's own process: its worker must not live on
        process.wait()
    finally:
        process.kill()
    assert _mid_trial(folder), process.stderr.read().decode()
    (running,) = journal_study(folder).get_trials(states=(TrialState.RUNNING,))
    _wait(lambda: not alive(running.system_attrs["dlx:worker"]["pid"]), 10, "the orphaned worker to die")
    # the worker looks for its sweep every 0.2 s: by then it may have finished that trial and begun the next
    (running,) = journal_study(folder).get_trials(states=(TrialState.RUNNING,))

    result = CliRunner().invoke(app, ["sweep", str(sweep), "--resume", "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output

    trials = journal_study(folder).get_trials()
    done = [t for t in trials if counted(t)]
    assert len(done) == TRIALS and all(t.state == TrialState.COMPLETE for t in done)
    (interrupted,) = [t for t in trials if t.system_attrs.get(INTERRUPTED)]
    assert interrupted.number == running.number
    (rerun,) = [t for t in done if t.user_attrs.get("retry_of") == interrupted.number]
    assert rerun.params == interrupted.params  # the same values, run again once
    assert len(set(param_sets(done))) == TRIALS  # nothing ran twice
    assert sorted(p.name for p in folder.glob("trial-*")) == sorted(t.user_attrs["run"] for t in done)
    for t in done:  # each run trained its epochs once, from scratch
        lines = (folder / t.user_attrs["run"] / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == list(range(1, EPOCHS + 1))
    assert f"{TRIALS} of {TRIALS} trials done" in result.output
