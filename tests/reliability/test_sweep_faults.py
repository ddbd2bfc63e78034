"""Sweeps under faults, beyond tests/test_sweep_resume.py (the sweep process killed, then resumed): a worker process
SIGKILLed in the middle of a trial under a live sweep, and sweep processes racing on one study (the journal file
on this machine). No trial is lost without a record or run twice; each run folder belongs to one trial."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from optuna.trial import TrialState
from typer.testing import CliRunner

from dlx.cli import app
from dlx.sweep.study import counted
from tests.conftest import ROOT
from tests.reliability.procs import lines, wait_until
from tests.sweeps import journal_study, param_sets, write_sweep

TRIALS, EPOCHS = 4, 6
SETTINGS = ["model.name=mlp", "model.sizes=16", "train.device=cpu", "train.patience=null", "train.threads=1"]


def sweep_process(sweep: Path, runs: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dlx", "sweep", str(sweep), "--runs-dir", str(runs), *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def check_trials(folder: Path, count: int = TRIALS) -> list:
    """Exactly `count` counted trials, none with the values of another, one run folder each, trained once."""
    trials = journal_study(folder).get_trials()
    done = [t for t in trials if counted(t)]
    assert len(done) == count and not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert len(set(param_sets(done))) == count
    assert sorted(p.name for p in folder.glob("trial-*")) == sorted(t.user_attrs["run"] for t in done)
    for t in done:
        if t.state == TrialState.COMPLETE:
            epochs = [json.loads(x)["epoch"] for x in (folder / t.user_attrs["run"] / "metrics.jsonl").read_text().splitlines()]
            assert epochs == list(range(1, EPOCHS + 1)), t.number
    return trials


def test_a_worker_killed_mid_trial_is_recorded_and_the_sweep_finishes_without_repeats(tmp_path):
    sweep = write_sweep(tmp_path, trials=TRIALS, epochs=EPOCHS, set=SETTINGS)
    folder = tmp_path / "runs" / "tiny"
    process = sweep_process(sweep, folder.parent)
    try:
        wait_until(lambda: lines(folder / "trial-0001" / "metrics.jsonl") >= 2, process)
        (running,) = journal_study(folder).get_trials(states=(TrialState.RUNNING,))
        os.kill(running.system_attrs["dlx:worker"]["pid"], signal.SIGKILL)  # the worker, not the sweep
        output = process.communicate(timeout=300)[0].decode()
    finally:
        process.kill()
    assert process.returncode == 0, output
    trials = check_trials(folder)
    killed = trials[running.number]
    assert killed.state == TrialState.FAIL and "SIGKILL" in killed.user_attrs["error"]
    assert sum(t.state == TrialState.COMPLETE for t in trials) == TRIALS - 1

    again = CliRunner().invoke(app, ["sweep", str(sweep), "--resume", "--runs-dir", str(folder.parent)])
    assert again.exit_code == 0, again.output
    assert journal_study(folder).get_trials() == trials  # a finished sweep resumed runs nothing again


def test_sweep_processes_racing_on_one_study_share_it_exactly(tmp_path):
    trials = 2 * TRIALS
    sweep = write_sweep(tmp_path, trials=trials, epochs=EPOCHS, set=SETTINGS)
    folder = tmp_path / "runs" / "tiny"
    # two processes create the same study at once (--timeout 0: set it up, start no trial)
    creators = [sweep_process(sweep, folder.parent, "--timeout", "0") for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0].decode() for p in creators]
    assert sorted(p.returncode for p in creators) == [0, 2], outputs  # one created it, the other was told in one line
    (refusal,) = [o for p, o in zip(creators, outputs) if p.returncode == 2]
    assert "already holds sweep 'tiny'" in refusal and "Traceback" not in refusal
    # then two run it at once, claiming trials from the same journal file
    racers = [sweep_process(sweep, folder.parent, "--resume") for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0].decode() for p in racers]
    assert [p.returncode for p in racers] == [0, 0], outputs
    trials = check_trials(folder, trials)
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.system_attrs["dlx:worker"]["pid"] for t in trials}) == 2, "one of the racers ran no trial"
