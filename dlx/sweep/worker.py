"""One worker process of a sweep: claim a slot, run it as an ordinary dlx run, tell the study, repeat.

A trial is `dlx train` with the sweep's overrides: the same config path, the same loop, its own
run folder runs/<study>/trial-NNNN (config.yaml, checkpoints, TensorBoard events and hparams).
After each epoch the monitored metric is reported to Optuna, whose pruner may stop the run.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time

import optuna
import torch
from rich.console import Console

from dlx.threads import cpu_count
from dlx.sweep import space, study
from dlx.sweep.spec import Sweep
from dlx.sweep.study import Where
from dlx.train import loop
from dlx.train.interrupts import Interrupted


def _die_with(sweep_pid: int) -> None:
    """When the `dlx sweep` process is killed, die too, leaving this trial RUNNING for --resume to
    recover, instead of training on unwatched. (Our parent is multiprocessing's fork server, which
    itself lives as long as we do, so the kernel's parent-death signal cannot tell.)"""

    def watch() -> None:
        while study.alive(sweep_pid):
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()


def work(sweep: Sweep, where: Where, threads: int | None, deadline: float | None, sweep_pid: int) -> None:
    """Run trials until no slot is left or the deadline has passed. The process entry point."""
    _die_with(sweep_pid)
    console = Console(stderr=True, highlight=False)
    storage = study.open_storage(where)
    shared = study.load(sweep, storage, where)
    try:
        while deadline is None or time.time() < deadline:
            trial_id = study.claim(shared, storage)
            if trial_id is None:
                return
            run_trial(sweep, where, storage, trial_id, threads, console)
    except (Interrupted, KeyboardInterrupt):
        sys.exit(128 + signal.SIGINT)


def run_trial(sweep: Sweep, where: Where, storage, trial_id: int, threads: int | None, console: Console) -> None:
    number = storage.get_trial(trial_id).number
    own = study.load(sweep, storage, where, number)  # this trial's sampler, seeded by its number
    trial = optuna.Trial(own, trial_id)
    started = time.perf_counter()

    def report(epoch: int, logged: dict[str, float]) -> None:
        trial.report(logged[sweep.metric], epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch}")

    with study.heartbeat(storage, trial_id):
        values = {}
        try:
            values = space.suggest(trial, sweep.space)
            config = sweep.config(values, f"trial-{number:04d}", threads)
            trial.set_user_attr("run", config.name)
            _, summary = loop.start(config, where.folder, quiet=True, console=Console(quiet=True), on_epoch=report)
            frozen = own.tell(trial, summary["monitor"][sweep.metric])
        except optuna.TrialPruned:
            frozen = own.tell(trial, state=optuna.trial.TrialState.PRUNED)
        except (Interrupted, KeyboardInterrupt):
            study.interrupt(own, storage, where, storage.get_trial(trial_id), "stopped by a signal")
            raise
        except (torch.OutOfMemoryError, MemoryError) as e:
            frozen = _fail(own, trial, f"out of memory: {_first_line(e)}", oom=True)
        except Exception as e:  # a trial's failure is the trial's result; the sweep goes on
            frozen = _fail(own, trial, _first_line(e))
    shown = " ".join(f"{k}={space.short(v)}" for k, v in values.items())
    value = space.short(frozen.value) if frozen.value is not None else frozen.user_attrs.get("error", "")
    console.print(f"trial {number}: {frozen.state.name.lower()} {sweep.metric}={value}  {shown}  "
                  f"({time.perf_counter() - started:.1f}s)", soft_wrap=True)


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _fail(own: optuna.Study, trial: optuna.Trial, error: str, oom: bool = False) -> optuna.trial.FrozenTrial:
    trial.set_user_attr("error", error)
    trial.set_user_attr("oom", oom)
    return own.tell(trial, state=optuna.trial.TrialState.FAIL)


def cpu_threads(jobs: int) -> int:
    """This machine's CPU threads shared between the workers."""
    return max(1, cpu_count() // jobs)
