"""train.threads: auto against every fixed count, on this machine as it is and with one of its cores kept busy.

For each experiment, training is timed with train.threads=auto (the default) and with 1, 2, ... up to the cores
this process may use, each in turn (--repeats rounds, the best of each kept), first as the machine is, then with
a busy loop of this script's own spinning on its last core (started before and stopped after). The figure is the
default's time over the best fixed count's (target <= 1.5), and PyTorch's own choice (null: every core) for
comparison. Timings include the default's probe (a few forward passes); one untimed run warms up first.

    python bench/threads.py [--repeats 2] [--epochs 3]
"""
from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console

import cpu_threads  # bench/cpu_threads.py, beside this script
from dlx import threads
from dlx.config import load
from dlx.train import loop

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
CASES = {  # small enough that a run takes seconds on one core: where PyTorch's default hurts most
    "digits_cnn": ("digits_cnn.yaml", []),
    "char_lstm": ("python_stdlib_char_lstm.yaml", ["data.max_chars=200000", "data.steps_per_epoch=10",
                                                   "data.eval_windows=32", "model.hidden=128", "samples.every=null"]),
}


def seconds(experiment: str, overrides: list[str], setting: str, folder: Path) -> tuple[float, int]:
    """Wall time of one training run and the thread count it computed with."""
    config = load(EXPERIMENTS / experiment, [*overrides, "train.device=cpu", f"train.threads={setting}",
                                             "train.checkpoint_seconds=60"])
    torch.set_num_threads(threads.cpu_count())  # what PyTorch starts with, whatever the run before left
    began = time.perf_counter()
    run, _ = loop.start(config, folder, quiet=True, console=Console(file=io.StringIO()))
    elapsed = time.perf_counter() - began
    return elapsed, load(run.path / "config.yaml").train.threads or torch.get_num_threads()


def measure(label: str, repeats: int, epochs: int, folder: Path) -> None:
    cores = threads.cpu_count()
    settings = ["auto", "null", *map(str, range(1, cores + 1))]
    print(f"{label}: load average {os.getloadavg()[0]:.1f} on {cores} cores")
    for name, (experiment, overrides) in CASES.items():
        overrides = [*overrides, f"train.epochs={epochs}"]
        best: dict[str, tuple[float, int]] = {}
        seconds(experiment, overrides, "1", folder)  # warm-up: first-time allocations and imports count for none
        for _ in range(repeats):  # rounds alternate the settings, so a change in the load hits them all
            for setting in settings:
                got = seconds(experiment, overrides, setting, folder)
                if setting not in best or got[0] < best[setting][0]:
                    best[setting] = got
        fixed = min((best[s][0], s) for s in settings[2:])
        auto_s, auto_n = best["auto"]
        print(f"  {name:>10}: auto {auto_s:6.2f} s ({auto_n} thread{'s' if auto_n > 1 else ''}), "
              + ", ".join(f"{s}: {best[s][0]:.2f} s" for s in settings[1:])
              + f"; auto / best ({fixed[1]}) = {auto_s / fixed[0]:.2f} (target <= 1.5)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        measure("as the machine is", args.repeats, args.epochs, Path(folder))
        with cpu_threads.busy_core() as core:
            time.sleep(2)  # let the spinner settle on its core
            measure(f"with a busy loop on core {core}", args.repeats, args.epochs, Path(folder))


if __name__ == "__main__":
    main()
