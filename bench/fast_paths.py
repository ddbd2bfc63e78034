"""The training switches measured: torch.compile and channels_last on vs off (and bf16 autocast).

Trains the same experiment with each switch off and on, in one process, and prints the time per
epoch of each and the ratio against the plain run. Whatever they give on this machine is the answer:
on a 2-core CPU they may well cost more than they save.

    python bench/fast_paths.py [--device cpu|cuda] [--epochs 3] [--experiment bench/mnist_sized_cnn.yaml]
"""
from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

from rich.console import Console
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import loop_overhead  # noqa: F401  (registers the generated 28x28 dataset)
from dlx.config import load
from dlx.runs import Run
from dlx.train.loop import Trainer

SWITCHES = {
    "plain": [],
    "channels_last": ["train.channels_last=true"],
    "compile": ["train.compile=true"],
    "bf16": ["train.precision=bf16"],
}


def epoch_seconds(experiment: Path, overrides: list[str], runs: Path) -> float:
    """Seconds per epoch, not counting the first epoch (where compilation happens)."""
    config = load(experiment, overrides)
    trainer = Trainer(config, Console(file=io.StringIO()), quiet=True)
    run = Run.create(runs, config.name)
    trainer.fit(run)
    run.close()
    events = EventAccumulator(str(run.path))
    events.Reload()
    seconds = [e.value for e in events.Scalars("time/epoch_seconds")]
    return sum(seconds[1:]) / max(len(seconds) - 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--experiment", type=Path, default=Path(__file__).parent / "mnist_sized_cnn.yaml")
    args = parser.parse_args()
    base = [f"train.device={args.device}", f"train.epochs={args.epochs}", "train.patience=null"]
    with tempfile.TemporaryDirectory() as tmp:
        plain = None
        for name, switch in SWITCHES.items():
            seconds = epoch_seconds(args.experiment, base + switch, Path(tmp))
            plain = plain or seconds
            print(f"{name:14s} {seconds:7.3f} s/epoch  ratio to plain {seconds / plain:.3f}  ({args.device})")


if __name__ == "__main__":
    main()
