"""The --set option the benchmarks share (imported from bench/ as a sibling script): config overrides, as dlx
train --set takes them, applied to every run a benchmark makes (bench/gpu_suite.py shrinks its dry run so)."""
from __future__ import annotations

import argparse


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override for every run (repeatable), as dlx train --set")
