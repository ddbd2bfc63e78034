"""The training switches measured: channels_last, torch.compile, bf16, fp16, threads, accumulation, EMA vs plain.

Trains the same experiment with each switch off and on, in one process, in rounds (every switch once
a round, each compared with the plain run of its round, the order reversed every other round: this
machine's speed drifts from minute to minute), and prints the median ratio of the time per epoch
against the plain run. Whatever they give
on this machine is the answer: on a 2-core CPU they may well cost more than they save.

    python bench/fast_paths.py [--device cpu|cuda] [--epochs 3] [--repeats 4] [--experiment bench/mnist_sized_cnn.yaml]
                               [--switch NAME ...] [--set KEY=VALUE ...] [--json FILE]
"""
from __future__ import annotations

import argparse
import io
import statistics
import tempfile
from pathlib import Path

import overrides
import report
import torch
from rich.console import Console
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import loop_overhead  # noqa: F401  (registers the generated 28x28 dataset)
from dlx.config import load
from dlx.errors import DlxError
from dlx.run.folder import Run
from dlx.train.loop import Trainer

SWITCHES = {
    "plain": [],
    "channels_last": ["train.channels_last=true"],
    "compile": ["train.compile=true"],
    "bf16": ["train.precision=bf16"],
    "fp16": ["train.precision=fp16"],  # with the gradient scaler
    "one thread": ["train.threads=1"],
    "accumulate 4": ["train.accumulate=4"],  # a step every 4 batches: the same examples, a quarter of the steps
    "ema": ["train.ema=0.999"],  # a moving average of the weights, updated every step
}


def epoch_seconds(experiment: Path, settings: list[str], runs: Path) -> float:
    """Seconds per epoch, not counting the first epoch (where compilation happens)."""
    config = load(experiment, settings)
    threads = torch.get_num_threads()
    trainer = Trainer(config, Console(file=io.StringIO()), quiet=True)
    run = Run.create(runs, config.name)
    trainer.fit(run)
    run.close()
    torch.set_num_threads(threads)  # train.threads sets the process's count: the next run starts from the same
    events = EventAccumulator(str(run.path))
    events.Reload()
    seconds = [e.value for e in events.Scalars("time/epoch_seconds")]
    return sum(seconds[1:]) / max(len(seconds) - 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=4, help="rounds of every switch; the median ratio counts")
    parser.add_argument("--experiment", type=Path, default=Path(__file__).parent / "mnist_sized_cnn.yaml")
    parser.add_argument("--switch", action="append", choices=[name for name in SWITCHES if name != "plain"],
                        help="measure only these switches (repeatable; default: all)")
    overrides.add_option(parser)
    report.add_option(parser)
    args = parser.parse_args()
    base = [f"train.device={args.device}", f"train.epochs={args.epochs}", "train.patience=null", *args.set]
    switches = ["plain", *(args.switch or [name for name in SWITCHES if name != "plain"])]
    ratios: dict[str, list[float]] = {name: [] for name in switches}
    failed: dict[str, str] = {}  # a switch that cannot train this experiment (it diverges, say), and why
    plain_seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):  # a round of every switch, each against the plain run of its round,
            order = switches if repeat % 2 == 0 else switches[::-1]  # forwards, then backwards
            seconds = {}
            for name in (name for name in order if name not in failed):
                try:
                    seconds[name] = epoch_seconds(args.experiment, base + SWITCHES[name], Path(tmp))
                except DlxError as e:
                    if name == "plain":
                        raise
                    failed[name] = str(e)
            plain_seconds.append(seconds["plain"])
            for name in seconds:
                ratios[name].append(seconds[name] / seconds["plain"])
    plain = statistics.median(plain_seconds)
    print(f"plain: {plain:.3f} s/epoch ({args.device}, {torch.get_num_threads()} threads)")
    for name, values in ratios.items():
        if name in failed:
            print(f"{name:14s} failed: {failed[name]}")
        else:
            print(f"{name:14s} ratio to plain {statistics.median(values):.3f}  (rounds: {' '.join(f'{v:.3f}' for v in values)})")
    report.write(args, {"plain_seconds_per_epoch": plain, "device": args.device, "experiment": args.experiment.name,
                        "ratio_to_plain": {name: statistics.median(values) for name, values in ratios.items()
                                           if name not in failed},
                        "rounds": ratios, "failed": failed})
    if failed:
        raise SystemExit(f"{', '.join(failed)} failed on {args.experiment.name}")


if __name__ == "__main__":
    main()
