"""dlx sweep: what Hyperband pruning saves, and what a second worker process buys.

1. The same TPE sweep (MLP on the embedded digits: learning rate, hidden layers, dropout, batch size)
   with pruner none and with pruner hyperband (one thread each, a constant learning rate: pruning
   judges a trial by its first epochs, which a warm-up schedule such as 1cycle makes unrepresentative),
   over a few seeds: the best val/accuracy and the epochs trained.
   Target: the same best metric within 0.5 points for at most 40% of the epochs.
2. The same random sweep with --jobs 1 and --jobs 2 (after a warm-up, so neither pays for starting
   the worker server), with dlx's default split of the CPU threads between the workers and with one
   thread per trial: trials per second from the first trial's start to the last one's end, and the ratio.

    python bench/sweep_pruning.py [--trials 60] [--epochs 20] [--seeds 0 1 2] [--only pruning|throughput]
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
            "set": ["model.name=mlp", "model.sizes=64", "schedule.name=constant", "train.device=cpu", "train.patience=null",
                    *threads], **fields}
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


def pruning(folder: Path, trials: int, epochs: int, seeds: list[int]) -> None:
    print(f"TPE, {trials} trials of up to {epochs} epochs, one thread each; pruner none vs hyperband:")
    gaps, shares = [], []
    for seed in seeds:
        same = {"method": "tpe", "trials": trials, "epochs": epochs, "seed": seed, "threads": ("train.threads=1",)}
        plain, plain_s = run(folder, f"tpe-none-{seed}", pruner="none", **same)
        pruned, pruned_s = run(folder, f"tpe-hyperband-{seed}", pruner="hyperband", **same)
        gaps.append(100 * (plain.best_value - pruned.best_value))
        shares.append(epochs_trained(pruned) / epochs_trained(plain))
        cut = sum(t.state.name == "PRUNED" for t in pruned.get_trials(deepcopy=False))
        print(f"  seed {seed}: best val/accuracy {100 * plain.best_value:.2f} vs {100 * pruned.best_value:.2f} "
              f"(gap {gaps[-1]:+.2f} points), epochs {epochs_trained(plain)} vs {epochs_trained(pruned)} ({shares[-1]:.0%}), "
              f"{plain_s:.0f}s vs {pruned_s:.0f}s, {cut} trials pruned")
    gap, share = sum(gaps) / len(gaps), sum(shares) / len(shares)
    verdict = "PASS" if abs(gap) <= 0.5 and share <= 0.4 else "FAIL"
    print(f"  mean gap {gap:+.2f} points (target within 0.5), mean epochs {share:.0%} of none's (target <= 40%): {verdict}")


def throughput(folder: Path, trials: int) -> None:
    """--jobs 2 vs --jobs 1 with dlx's default split of the CPU threads, and with one thread per trial."""
    for label, threads in (("default thread split", ()), ("one thread per trial", ("train.threads=1",))):
        rates = {}
        for jobs in (1, 2):
            _, seconds = run(folder, f"jobs-{jobs}-{len(threads)}", jobs=jobs, method="random", trials=trials, epochs=3,
                             threads=threads)
            rates[jobs] = trials / seconds
        print(f"{label}: --jobs 1 {rates[1]:.2f} trials/s, --jobs 2 {rates[2]:.2f} trials/s: "
              f"throughput ratio {rates[2] / rates[1]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--throughput-trials", type=int, default=8)
    parser.add_argument("--only", choices=("pruning", "throughput"))
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run(folder, "warm-up", method="random", trials=1, epochs=1)  # starts the worker server once
        if args.only != "throughput":
            pruning(folder, args.trials, args.epochs, args.seeds)
        if args.only != "pruning":
            throughput(folder, args.throughput_trials)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
