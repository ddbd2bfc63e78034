"""`dlx sweep` end to end: trials are ordinary runs, best.yaml trains, a failing trial does not stop
the sweep, and each bad input is one line and exit code 2 before any trial starts."""
from __future__ import annotations

import os

import pytest
import torch
import yaml
from optuna.trial import TrialState
from typer.testing import CliRunner

from dlx.cli import app
from dlx.config import load
from dlx.runs_table import SWEEP, find
from tests.sweeps import journal_study, param_sets, write_sweep

runner = CliRunner()


def dlx(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_six_random_trials_with_two_workers(tmp_path):
    sweep = write_sweep(tmp_path)
    runs = tmp_path / "runs"
    result = dlx("sweep", sweep, "--jobs", 2, "--runs-dir", runs)
    assert result.exit_code == 0, result.output
    folder = runs / "tiny"
    trials = journal_study(folder).get_trials()
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len(set(param_sets(trials))) == 6  # no duplicates
    assert len({t.system_attrs["dlx:worker"]["pid"] for t in trials}) == 2  # both workers took trials
    cpus = len(os.sched_getaffinity(0))
    for t in trials:  # each trial is an ordinary run whose config holds the sampled values
        run = folder / f"trial-{t.number:04d}"
        config = load(run / "config.yaml")
        assert config.optimizer.settings["lr"] == t.params["optimizer.lr"] and config.model.settings["sizes"] == t.params["model.sizes"]
        assert config.train.epochs == 2 and config.train.threads == max(1, cpus // 2)
        assert (run / "summary.json").is_file() and (run / "checkpoints" / "best.pt").is_file()
        assert list(run.glob("events.out.tfevents.*"))
    assert "6 of 6 trials done (6 complete" in result.output
    assert (folder / "history.png").stat().st_size > 0 and (folder / "importances.png").stat().st_size > 0

    best = max(trials, key=lambda t: t.value)
    best_yaml = folder / "best.yaml"
    assert yaml.safe_load(best_yaml.read_text())["optimizer"]["lr"] == best.params["optimizer.lr"]
    trained = dlx("train", best_yaml, "--runs-dir", runs, "--quiet")
    assert trained.exit_code == 0, trained.output
    assert (runs / "tiny-best" / "summary.json").is_file()
    listed = {row.name: row for row in find(runs)}  # `dlx runs` shows the study as one row, its best trial's values
    assert listed["tiny"].status == SWEEP and listed["tiny"].best == pytest.approx(best.value)
    assert f"6 trials, 6 finished, best trial-{best.number:04d}" == listed["tiny"].detail
    assert dlx("runs", "--runs-dir", runs).exit_code == 0

    status = dlx("sweep", sweep, "--status", "--runs-dir", runs)
    assert status.exit_code == 0 and f"best: trial {best.number}" in status.output
    again = dlx("sweep", sweep, "--runs-dir", runs)
    assert again.exit_code == 2 and "--resume" in again.output


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path):
    sweep = write_sweep(tmp_path, method="grid", space={"model.sizes": ["16", "0"]}, trials=None)
    result = dlx("sweep", sweep, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 0, result.output
    trials = {t.params["model.sizes"]: t for t in journal_study(tmp_path / "runs" / "tiny").get_trials()}
    assert trials["16"].state == TrialState.COMPLETE
    assert trials["0"].state == TrialState.FAIL and "layer sizes must be positive" in trials["0"].user_attrs["error"]


def test_out_of_memory_is_recorded_as_such(tmp_path, monkeypatch):
    from dlx.sweep import study, worker
    from dlx.sweep.spec import load_sweep
    from dlx.train import loop

    checked = load_sweep(write_sweep(tmp_path, trials=1))
    where = study.Where(tmp_path / "runs" / "tiny", "tiny")
    storage = study.open_storage(where)
    shared = study.prepare(checked, storage, where, resume=False, trials=None)

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop, "start", out_of_memory)
    worker.run_trial(checked, where, storage, study.claim(shared, storage), None, runner_console())
    (trial,) = shared.get_trials()
    assert trial.state == TrialState.FAIL and trial.user_attrs["oom"] is True
    assert trial.user_attrs["error"].startswith("out of memory: OutOfMemoryError: CUDA out of memory")


def test_a_worker_killed_under_a_live_sweep_fails_its_trial_as_out_of_memory(tmp_path):
    from dlx.sweep import study
    from dlx.sweep.engine import _death
    from dlx.sweep.spec import load_sweep

    checked = load_sweep(write_sweep(tmp_path, trials=2))
    where = study.Where(tmp_path / "runs" / "tiny", "tiny")
    storage = study.open_storage(where)
    shared = study.prepare(checked, storage, where, resume=False, trials=None)
    study.claim(shared, storage)  # as if a worker with this pid had claimed it
    study.fail_orphans(shared, storage, os.getpid(), _death(-9))
    failed, waiting = shared.get_trials()
    assert failed.state == TrialState.FAIL and failed.user_attrs["oom"] is True and study.counted(failed)
    assert "SIGKILL (most likely out of memory)" in failed.user_attrs["error"] and waiting.state == TrialState.WAITING


def runner_console():
    from rich.console import Console

    return Console(quiet=True)


BAD = {
    "unknown config path": ({"space": {"optimizer.lrr": [0.1, 0.01]}}, [], "optimizer.lrr: unknown setting for 'adam' (did you mean 'lr'?)"),
    "unknown section": ({"space": {"modle.sizes": ["8"]}}, [], "did you mean 'model'"),
    "inverted range": ({"space": {"optimizer.lr": {"low": 0.1, "high": 0.001}}}, [], "empty or inverted range"),
    "empty list": ({"space": {"model.sizes": []}}, [], "space.model.sizes.values: list should have at least 1 item"),
    "value the config refuses": ({"space": {"model.dropout": {"low": 0.0, "high": 1.5}}}, [], "model.dropout"),
    "grid over a continuous range": ({"method": "grid"}, [], "method grid needs discrete values, but optimizer.lr"),
    "metric never logged": ({"metric": "val/acuracy"}, [], "runs never log 'val/acuracy' (did you mean 'val/accuracy'?)"),
    "unknown sweep key": ({"methd": "tpe"}, [], "methd: unknown key (did you mean 'method'?)"),
    "unknown method": ({"method": "bayes"}, [], "method: input should be 'grid', 'random', 'tpe' or 'cmaes'"),
    "unknown pruner": ({"pruner": "asha"}, [], "pruner: input should be"),
    "grid smaller than trials": ({"method": "grid", "space": {"model.sizes": ["8", "16"]}}, [], "the grid has 2 points"),
    "unreachable storage": ({}, ["--storage", "postgresql://dlx:secret@127.0.0.1:9/dlx"], "--storage postgresql://dlx:***@127.0.0.1:9/dlx"),
    "unknown storage scheme": ({}, ["--storage", "nosuchdb://x/y"], "--storage nosuchdb://x/y"),
    "nothing to resume": ({}, ["--resume"], "nothing to resume"),
    "no sweep to report": ({}, ["--status"], "no sweep in"),
}


@pytest.mark.parametrize("changes, args, message", BAD.values(), ids=BAD.keys())
def test_bad_input_is_one_line_and_exit_2_before_any_trial(tmp_path, changes, args, message):
    sweep = write_sweep(tmp_path, **changes)
    runs = tmp_path / "runs"
    result = dlx("sweep", sweep, *args, "--runs-dir", runs)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not list(runs.glob("*/trial-*"))


@pytest.mark.parametrize("beat_age, gone", [(10.0, False), (10_000.0, True)])
def test_a_trial_of_another_machine_is_interrupted_only_when_its_heartbeat_is_old(tmp_path, beat_age, gone):
    import time

    from dlx.sweep import study
    from dlx.sweep.spec import load_sweep

    checked = load_sweep(write_sweep(tmp_path, trials=2))
    where = study.Where(tmp_path / "runs" / "tiny", "tiny")
    storage = study.open_storage(where)
    shared = study.prepare(checked, storage, where, resume=False, trials=None)
    trial_id = study.claim(shared, storage)
    storage.set_trial_param(trial_id, "optimizer.lr", 0.01, checked.space["optimizer.lr"].distribution())
    storage.set_trial_system_attr(trial_id, study.WORKER, {"host": "another-machine", "pid": 1})
    storage.set_trial_system_attr(trial_id, study.BEAT, time.time() - beat_age)
    assert study.recover(shared, storage, where) == ([0] if gone else [])
    trials = shared.get_trials()
    if gone:  # failed as interrupted (not counted), and its values queued again
        assert trials[0].state == TrialState.FAIL and not study.counted(trials[0])
        assert trials[-1].state == TrialState.WAITING and trials[-1].system_attrs["fixed_params"] == {"optimizer.lr": 0.01}
    else:
        assert trials[0].state == TrialState.RUNNING and len(trials) == 2


def test_timeout_starts_no_new_trial_and_resume_finishes_the_sweep(tmp_path):
    sweep = write_sweep(tmp_path, trials=2)
    runs = tmp_path / "runs"
    stopped = dlx("sweep", sweep, "--timeout", 0, "--runs-dir", runs)
    assert stopped.exit_code == 0 and "0 of 2 trials done" in stopped.output
    assert [t.state for t in journal_study(runs / "tiny").get_trials()] == [TrialState.WAITING] * 2
    resumed = dlx("sweep", sweep, "--resume", "--runs-dir", runs)
    assert resumed.exit_code == 0 and "2 of 2 trials done (2 complete" in resumed.output
    assert len(journal_study(runs / "tiny").get_trials()) == 2
