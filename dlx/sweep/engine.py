"""`dlx sweep`: check the sweep file, set up the study, run the worker processes, report.

Workers are separate processes (forked from a clean server process, never from one that has run
PyTorch's thread pool, which a fork would hang), so a worker killed by the out-of-memory killer
takes only its own trial down: that trial is recorded failed, a new worker takes its place.
"""
from __future__ import annotations

import os
import signal
import time
from multiprocessing.connection import wait
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from dlx.config import RUN_NAME
from dlx.errors import DlxError
from dlx.sweep import report, study, worker, worker_context
from dlx.sweep.spec import Sweep, load_sweep
from dlx.sweep.study import Where
from dlx.train.interrupts import Interrupted, catch_stop_signals


def sweep(path: Path, trials: int | None = None, jobs: int = 1, storage: str | None = None, study_name: str | None = None,
          resume: bool = False, timeout: float | None = None, status: bool = False, runs_dir: Path = Path("runs"),
          epochs: int | None = None, console: Console | None = None) -> None:
    """Run (or resume, or join) a sweep, then report; with status=True only report."""
    console = console or Console()
    checked = load_sweep(path, trials, epochs,
                         lambda note: console.print(f"[yellow]note: {escape(note)}[/]", highlight=False, soft_wrap=True))
    name = study_name or checked.name
    if not RUN_NAME.match(name):
        raise DlxError(f"--study '{name}': a study name is letters, digits, '.', '_' and '-'")
    where = Where(runs_dir / name, name, storage)
    if status and storage is None and not where.journal.is_file():
        raise DlxError(f"no sweep in {where.folder}; start it with: dlx sweep {path}")
    store = study.open_storage(where)
    if status:
        if not study.exists(store, name):
            raise DlxError(f"no study '{name}' in {where.describe()}; start it with: dlx sweep {path}")
        report.show(checked, study.load(checked, store, where), where, console)
        return
    shared = study.prepare(checked, store, where, resume, trials)
    deadline = time.time() + timeout if timeout is not None else None
    again = f"dlx sweep {path}" + (f" --study {name}" if study_name else "") + (" --storage URL" if storage else "")
    run_workers(checked, where, shared, store, jobs, deadline, console, resume_hint=f"resume with: {again} --resume")
    report.show(checked, shared, where, console)




def _sets_threads(checked: Sweep) -> bool:
    return "train.threads" in checked.space or any(o.split("=")[0].strip() == "train.threads" for o in checked.file.set)


def _death(exitcode: int) -> str:
    if exitcode < 0:
        name = signal.Signals(-exitcode).name
        return f"worker process killed by {name}" + (" (most likely out of memory)" if name == "SIGKILL" else "")
    return f"worker process exited with code {exitcode}"


def run_workers(checked: Sweep, where: Where, shared, store, jobs: int, deadline: float | None, console: Console,
                resume_hint: str) -> None:
    """Run `jobs` worker processes until the slots are done; a worker that dies is replaced."""
    ctx = worker_context()
    threads = None if _sets_threads(checked) else worker.cpu_threads(jobs)

    def start():
        process = ctx.Process(target=worker.work, args=(checked, where, threads, deadline, os.getpid()))
        process.start()
        return process

    processes = [start() for _ in range(jobs)]
    replaced = 0
    with catch_stop_signals() as stop:
        forwarded = False
        while processes:
            ended = wait([p.sentinel for p in processes], timeout=0.5)
            if stop.signum is not None and not forwarded:
                forwarded = True
                for p in processes:  # each stops its trial at the next step and re-enqueues it
                    if p.pid is not None and p.exitcode is None:
                        os.kill(p.pid, signal.SIGTERM)
            for p in [p for p in processes if p.sentinel in ended]:
                p.join()
                processes.remove(p)
                if p.exitcode != 0 and stop.signum is None:
                    why = _death(p.exitcode)
                    study.fail_orphans(shared, store, p.pid, why)
                    console.print(f"[yellow]{why}; its trial is recorded as failed[/]", highlight=False)
                    slots_left = any(t.state.name == "WAITING" for t in shared.get_trials(deepcopy=False))
                    if slots_left and replaced < checked.trials and (deadline is None or time.time() < deadline):
                        processes.append(start())
                        replaced += 1
    if stop.signum is not None:
        raise Interrupted(stop.signum, resume_hint)
