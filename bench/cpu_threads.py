"""The --threads option the explain benchmarks share (imported from bench/ as a sibling script)."""
from __future__ import annotations

import argparse

import torch


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=None, help="torch's CPU threads (default: its own choice); "
                        "1 gives steadier figures on a machine busy with other work")


def apply(args: argparse.Namespace) -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
