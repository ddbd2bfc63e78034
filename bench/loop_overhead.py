"""dlx's training loop against a bare hand-written PyTorch loop: same model, data, seed and work.

Both train the same model on the same in-memory tensors for the same epochs, shuffling every epoch
and measuring validation loss and accuracy after each; dlx also logs to TensorBoard, draws its live
progress display (into a buffer, as on a terminal), writes checkpoints and the summary. Runs come
in pairs, and the median of the pairs' time ratios dlx / bare is printed (target <= 1.05).

    python bench/loop_overhead.py [--device cpu|cuda] [--repeats 7] [--threads N] [--epochs N] [EXPERIMENT ...]
"""
from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console

from dlx import build
from dlx.config import load
from dlx.data.base import CLASSIFICATION, ArrayData
from dlx.registry import datasets
from dlx.runs import Run
from dlx.train.loop import Trainer

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
BENCH = Path(__file__).resolve().parent


@datasets.register("bench_images28", "generated MNIST-sized data: 10 noisy 28x28 class prototypes (benchmarks only)")
def bench_images28(*, n: int = 12_000, seed: int = 0) -> ArrayData:
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(10, 1, 28, 28, generator=generator)
    y = torch.randint(0, 10, (n,), generator=generator)
    x = (prototypes[y] + 0.5 * torch.randn(n, 1, 28, 28, generator=generator)).clamp(0, 1)
    return ArrayData(x, y, CLASSIFICATION)


def bare_loop(trainer: Trainer) -> float:
    """What a careful engineer writes by hand: the same objects, none of dlx's machinery."""
    config = trainer.config
    torch.manual_seed(config.seed)
    model = build.model(config, trainer.spec).to(trainer.device)
    loss_fn, optimizer = build.loss(config, trainer.spec), build.optimizer(config, model)
    schedule = build.schedule(config, optimizer, trainer.total_steps)
    x, y = trainer.data["train"]
    xv, yv = trainer.data["val"]
    generator = torch.Generator().manual_seed(config.seed)
    bs = config.train.batch_size
    started = time.perf_counter()
    for _ in range(config.train.epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator).to(x.device)
        xs, ys = x[order], y[order]
        for i in range(0, len(x), bs):
            loss = loss_fn(model(xs[i:i + bs]), ys[i:i + bs])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        model.eval()
        with torch.no_grad():
            out = model(xv)
            val_loss, val_acc = loss_fn(out, yv).item(), (out.argmax(1) == yv).float().mean().item()
    with torch.no_grad():
        xt, yt = trainer.data["test"]
        test_acc = (model(xt).argmax(1) == yt).float().mean().item()
    assert val_loss == val_loss and test_acc >= 0
    return time.perf_counter() - started


def dlx_loop(trainer: Trainer, runs: Path) -> float:
    torch.manual_seed(trainer.config.seed)
    run = Run.create(runs, trainer.config.name)
    started = time.perf_counter()
    trainer.fit(run)
    run.close()
    return time.perf_counter() - started


def compare(experiment: str, args) -> float:
    # the bare loop measures validation loss and accuracy each epoch: dlx is asked for the same
    overrides = [f"train.device={args.device}", "train.patience=null", "eval.metrics=[accuracy]"]
    overrides += [f"train.epochs={args.epochs}"] if args.epochs else []
    config = load(BENCH / experiment if (BENCH / experiment).is_file() else EXPERIMENTS / experiment, overrides)
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)  # the live display, rendered
    bare, dlx = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):  # pairs, each in the other order than the last, so drift cancels
            sides = [lambda: bare.append(bare_loop(Trainer(config, terminal))),
                     lambda: dlx.append(dlx_loop(Trainer(config, terminal), Path(tmp)))]
            for side in sides if repeat % 2 == 0 else sides[::-1]:
                side()
    # this machine's speed drifts from minute to minute: each pair ran under the same conditions, so the
    # median of the pairs' ratios is the steadiest figure; the ratio of the medians is printed beside it
    ratios = [d / b for b, d in zip(bare, dlx)]
    ratio = statistics.median(ratios)
    print(f"{experiment:28s} bare {statistics.median(bare):7.3f}s  dlx {statistics.median(dlx):7.3f}s  "
          f"ratio {ratio:.3f}  (of medians {statistics.median(dlx) / statistics.median(bare):.3f}; "
          f"{args.repeats} pairs, {config.train.epochs} epochs, {args.device}, {torch.get_num_threads()} threads)")
    if args.verbose:
        print("  pairs:", "  ".join(f"{b:.3f}/{d:.3f}={d / b:.3f}" for b, d in zip(bare, dlx)))
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's choice)")
    parser.add_argument("--verbose", action="store_true", help="print every pair")
    parser.add_argument("--epochs", type=int, default=None, help="default: each experiment's own")
    parser.add_argument("experiments", nargs="*",
                        default=["digits_mlp_bench.yaml", "digits_cnn.yaml", "mnist_sized_cnn.yaml"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for experiment in args.experiments:
        compare(experiment, args)


if __name__ == "__main__":
    main()
