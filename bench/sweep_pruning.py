"""dlx sweep: what Hyperband pruning saves, and what a second worker process buys.

1. The same TPE sweep (MLP on the embedded digits: learning rate, hidden layers, dropout, batch size)
   with pruner none and with pruner hyperband (one thread each): the best val/accuracy of each and
   the epochs each trained. Target: the same best metric within 0.5 points for at most 40% of the epochs.
2. The same random sweep with --jobs 1 and --jobs 2 (after a warm-up, so neither pays for starting
   the worker server), with dlx's default split of the CPU threads between the workers: trials per
   second from the first trial's start to the last one's end, and the ratio.

    python bench/sweep_pruning.py [--trials 30] [--epochs 20] [--throughput-trials 8]
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import optuna
import yaml
from rich.console import Console

from dlx.sweep.engine import sweep
from dlx.sweep.study import Where, open_storage

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "digits_cnn.yaml"
SPACE = {
    "optimizer.lr": {"low": 0.0003, "high": 0.03, "log": True},
    "model.sizes": ["32", "64", "128", "128-64"],
    "model.dropout": {"low": 0.0, "high": 0.5},
    "train.batch_size": [32, 64, 128],
}


def write(folder: Path, name: str, threads: tuple[str, ...] = (), **fields) -> Path:
    spec = {"name": name, "experiment": str(EXPERIMENT), "metric": "val/accuracy", "seed": 0, "space": SPACE,
            "set": ["model.name=mlp", "model.sizes=64", "train.device=cpu", "train.patience=null", *threads], **fields}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run(folder: Path, name: str, jobs: int = 1, **fields) -> tuple[optuna.Study, float]:
    """Run a sweep to its end; returns its study and the wall time from the first trial's start to the
    last one's end (the set-up and the report are the same for any number of workers)."""
    sweep(write(folder, name, **fields), jobs=jobs, runs_dir=folder / "runs", console=Console(quiet=True))
    study = optuna.load_study(study_name=name, storage=open_storage(Where(folder / "runs" / name, name)))
    trials = study.get_trials(deepcopy=False)
    span = max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)
    return study, span.total_seconds()


def epochs_trained(study) -> int:
    return sum(len(t.intermediate_values) for t in study.get_trials(deepcopy=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--throughput-trials", type=int, default=8)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run(folder, "warm-up", method="random", trials=1, epochs=1)  # starts the worker server once

        same = {"method": "tpe", "trials": args.trials, "epochs": args.epochs, "threads": ("train.threads=1",)}
        plain, plain_s = run(folder, "tpe-none", pruner="none", **same)
        pruned, pruned_s = run(folder, "tpe-hyperband", pruner="hyperband", **same)
        gap = 100 * (plain.best_value - pruned.best_value)
        share = epochs_trained(pruned) / epochs_trained(plain)
        pruned_count = sum(t.state.name == "PRUNED" for t in pruned.get_trials(deepcopy=False))
        print(f"TPE, {args.trials} trials of up to {args.epochs} epochs:")
        print(f"  pruner none:      best val/accuracy {100 * plain.best_value:.2f}  epochs {epochs_trained(plain):4d}  {plain_s:.0f}s")
        print(f"  pruner hyperband: best val/accuracy {100 * pruned.best_value:.2f}  epochs {epochs_trained(pruned):4d}  "
              f"{pruned_s:.0f}s  ({pruned_count} trials pruned)")
        print(f"  best metric gap {gap:+.2f} points (target within 0.5); epochs {share:.0%} of none's (target <= 40%): "
              f"{'PASS' if abs(gap) <= 0.5 and share <= 0.4 else 'FAIL'}")

        n = args.throughput_trials
        rates = {}
        for jobs in (1, 2):
            _, seconds = run(folder, f"jobs-{jobs}", jobs=jobs, method="random", trials=n, epochs=3)
            rates[jobs] = n / seconds
            print(f"--jobs {jobs}: {n} trials in {seconds:.1f}s = {rates[jobs]:.2f} trials/s")
        print(f"throughput --jobs 2 / --jobs 1: {rates[2] / rates[1]:.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
