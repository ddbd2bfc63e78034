"""The --json option the benchmarks share (imported from bench/ as a sibling script): their figures, as data.

bench/gpu_suite.py runs each benchmark with `--json FILE` and collects what it measured.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, default=None, metavar="FILE",
                        help="also write the figures printed to FILE, as JSON")


def write(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
