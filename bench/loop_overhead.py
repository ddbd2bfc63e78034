"""dlx's training loop against a bare hand-written PyTorch loop: same model, data, seed and work.

Both train the same model on the same in-memory tensors for the same epochs, shuffling every epoch
and measuring validation loss and accuracy after each; dlx also logs to TensorBoard, draws its live
progress display (into a buffer, as on a terminal), writes metrics.jsonl, checkpoints and the summary.

The two run in step, an epoch of one and then an epoch of the other: the bare loop's epoch runs in
dlx's per-epoch hook and its time is taken out of dlx's. This machine's speed drifts by 10% and more
from one second to the next, so two runs one after the other can differ by more than the overhead
being measured; epochs interleaved see the same machine. Prints the median over the repeats of the
time ratio dlx / bare (target <= 1.05).

    python bench/loop_overhead.py [--device cpu|cuda] [--repeats 5] [--threads N] [--epochs N] [EXPERIMENT ...]
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


class BareLoop:
    """What a careful engineer writes by hand, an epoch at a time: the same objects, none of dlx's machinery."""

    def __init__(self, trainer: Trainer):
        config = trainer.config
        torch.manual_seed(config.seed)
        self.model = build.model(config, trainer.spec).to(trainer.device)
        self.loss_fn, self.optimizer = build.loss(config, trainer.spec), build.optimizer(config, self.model)
        self.schedule = build.schedule(config, self.optimizer, trainer.total_steps)
        self.data, self.batch_size = trainer.data, config.train.batch_size
        self.generator = torch.Generator().manual_seed(config.seed)

    def epoch(self) -> float:
        """Train one epoch and measure the validation loss and accuracy; returns the seconds taken."""
        started = time.perf_counter()
        model, loss_fn, optimizer, bs = self.model, self.loss_fn, self.optimizer, self.batch_size
        x, y = self.data["train"]
        model.train()
        order = torch.randperm(len(x), generator=self.generator).to(x.device)
        xs, ys = x[order], y[order]
        for i in range(0, len(x), bs):
            loss = loss_fn(model(xs[i:i + bs]), ys[i:i + bs])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            self.schedule.step()
        xv, yv = self.data["val"]
        model.eval()
        with torch.no_grad():
            out = model(xv)
            val_loss, val_acc = loss_fn(out, yv).item(), (out.argmax(1) == yv).float().mean().item()
        assert val_loss == val_loss and 0 <= val_acc <= 1
        return time.perf_counter() - started

    def test(self) -> float:
        started = time.perf_counter()
        xt, yt = self.data["test"]
        with torch.no_grad():
            assert 0 <= (self.model(xt).argmax(1) == yt).float().mean().item() <= 1
        return time.perf_counter() - started


def in_step(config, terminal: Console, runs: Path) -> tuple[float, float]:
    """(bare seconds, dlx seconds) of one training of each, epoch by epoch in turn."""
    bare_epochs: list[float] = []
    trainer = Trainer(config, terminal, on_epoch=lambda epoch, values: bare_epochs.append(bare.epoch()))
    bare = BareLoop(trainer)
    torch.manual_seed(config.seed)
    run = Run.create(runs, config.name)
    started = time.perf_counter()
    trainer.fit(run)
    run.close()
    dlx = time.perf_counter() - started - sum(bare_epochs)
    return sum(bare_epochs) + bare.test(), dlx


def compare(experiment: str, args) -> float:
    # the bare loop measures validation loss and accuracy each epoch: dlx is asked for the same
    overrides = [f"train.device={args.device}", "train.patience=null", "eval.metrics=[accuracy]"]
    overrides += [f"train.epochs={args.epochs}"] if args.epochs else []
    config = load(BENCH / experiment if (BENCH / experiment).is_file() else EXPERIMENTS / experiment, overrides)
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)  # the live display, rendered
    with tempfile.TemporaryDirectory() as tmp:
        bare, dlx = zip(*(in_step(config, terminal, Path(tmp)) for _ in range(args.repeats)))
    ratios = [d / b for b, d in zip(bare, dlx)]
    ratio = statistics.median(ratios)
    print(f"{experiment:28s} bare {statistics.median(bare):7.3f}s  dlx {statistics.median(dlx):7.3f}s  "
          f"ratio {ratio:.3f}  (median of {args.repeats}, each {' '.join(f'{r:.3f}' for r in ratios)}; "
          f"{config.train.epochs} epochs, {args.device}, {torch.get_num_threads()} threads)")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's choice)")
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
