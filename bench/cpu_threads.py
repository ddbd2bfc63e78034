"""What the benchmarks share about CPU threads (imported from bench/ as a sibling script): the --threads option,
and a busy loop on one core, to measure on a machine where another process takes a core."""
from __future__ import annotations

import argparse
import multiprocessing
import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None, help="torch's CPU threads (default: its own choice); "
                        "1 gives steadier figures on a machine busy with other work")


def apply(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")


def _spin(core: int) -> None:
    os.sched_setaffinity(0, {core})
    while True:
        pass


@contextmanager
def busy_core() -> Iterator[int]:
    """Another process spinning on the last core this process may use, for as long as the block runs."""
    core = max(os.sched_getaffinity(0))
    spinner = multiprocessing.get_context("spawn").Process(target=_spin, args=(core,), daemon=True)
    spinner.start()
    try:
        yield core
    finally:
        spinner.terminate()
        spinner.join()
