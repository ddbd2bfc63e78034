"""Hyperparameter sweeps on Optuna: a search space over dotted config paths, each trial an ordinary run.

space.py   the space -> sampled values -> `--set`-style overrides
spec.py    the sweep file, checked whole before any trial starts
study.py   storage, samplers, pruners, and exact trial accounting across workers and machines
worker.py  one worker process: claim a trial, train it, report each epoch for pruning
engine.py  `dlx sweep`: set up, run the workers, report
report.py  the table, importances, best.yaml and plots

The package is also `dlx.sweep(sweep_file, ...)`, dlx.api.sweep (see dlx.CallablePackage).
"""

from __future__ import annotations

import multiprocessing
import sys

from dlx import CallablePackage

sys.modules[__name__].__class__ = CallablePackage


def worker_context() -> multiprocessing.context.BaseContext:
    """Worker processes fork from a server process that imported dlx once and never ran PyTorch's
    thread pool: forking a process that has run it hangs the child's first parallel operation."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["dlx.build", "dlx.sweep.worker"])  # imported once, not once per worker
    return ctx


def warm_up() -> None:
    """Start the worker server now, so it imports PyTorch while this process does the same."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        from multiprocessing import forkserver

        worker_context()
        forkserver.ensure_running()
