"""dlx against a bare hand-written PyTorch loop: the same model, data, seed and work.

Both train the same model on the same in-memory tensors for the same epochs, shuffling every epoch,
measuring validation loss and accuracy after each and the final model's on every split at the end
(dlx's summary.json); dlx also logs to TensorBoard, draws its live progress display (into a buffer,
as on a terminal), writes metrics.jsonl and checkpoints.

Two ratios are printed, dlx's time over:
- the loop you would write: `torch.optim.Adam(model.parameters(), lr=...)` and the rest by hand.
  dlx picks PyTorch's fused optimizer kernels where they exist (target <= 1.05);
- the same loop driving dlx's own optimizer object: what dlx's loop, logging and checkpoints cost.

The three trainings run in step, an epoch of each in turn: the bare loops' epochs run in dlx's
per-epoch hook and their time is taken out of dlx's. This machine's speed drifts by 10% and more
from one second to the next, so runs one after the other can differ by more than the overhead being
measured; interleaved epochs see the same machine. Each ratio is the median over the repeats.

    python bench/loop_overhead.py [--device cpu|cuda] [--repeats 5] [--threads N] [--epochs N] [--set KEY=VALUE]
                                  [--json FILE] [EXPERIMENT ...]

EXPERIMENT is a file in bench/ or experiments/: by default the digits MLP, the digits CNN and the MNIST-sized
CNN; bench/cifar_sized_resnet20.yaml is the GPU-sized case (a ResNet-20 on generated 32x32 colour images).
"""
from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import overrides
import report
import torch
from rich.console import Console

from dlx import build
from dlx.config import load
from dlx.data.base import CLASSIFICATION, ArrayData
from dlx.registry import datasets
from dlx.run.folder import Run
from dlx.train.loop import Trainer

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
BENCH = Path(__file__).resolve().parent


def generated_images(n: int, seed: int, channels: int, side: int) -> ArrayData:
    """10 classes of noisy copies of 10 random prototype images: learnable, and no file to download."""
    generator = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(10, channels, side, side, generator=generator)
    y = torch.randint(0, 10, (n,), generator=generator)
    x = (prototypes[y] + 0.5 * torch.randn(n, channels, side, side, generator=generator)).clamp(0, 1)
    return ArrayData(x, y, CLASSIFICATION)


@datasets.register("bench_images28", "generated MNIST-sized data: 10 noisy 28x28 class prototypes (benchmarks only)")
def bench_images28(*, n: int = 12_000, seed: int = 0) -> ArrayData:
    return generated_images(n, seed, channels=1, side=28)


@datasets.register("bench_images32", "generated CIFAR-sized data: 10 noisy 32x32 RGB class prototypes (benchmarks only)")
def bench_images32(*, n: int = 12_000, seed: int = 0) -> ArrayData:
    return generated_images(n, seed, channels=3, side=32)


# what a hand-written loop builds: PyTorch's optimizer over model.parameters(), with its defaults
BY_HAND = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def optimizer_by_hand(config, model: torch.nn.Module) -> torch.optim.Optimizer:
    if config.optimizer.name not in BY_HAND:
        raise SystemExit(f"the hand-written loop knows {sorted(BY_HAND)}, not '{config.optimizer.name}'")
    settings = dict(config.optimizer.settings)
    if settings.pop("momentum_form", "pytorch") != "pytorch":  # dlx's own setting; PyTorch's SGD is its pytorch form
        raise SystemExit("the hand-written loop runs PyTorch's SGD: give optimizer.momentum_form=pytorch")
    return BY_HAND[config.optimizer.name](model.parameters(), **settings)


class BareLoop:
    """What a careful engineer writes by hand, an epoch at a time: none of dlx's machinery."""

    def __init__(self, trainer: Trainer, by_hand: bool):
        config = trainer.config
        torch.manual_seed(config.seed)
        self.model = build.model(config, trainer.spec).to(trainer.device)
        self.loss_fn = build.loss(config, trainer.spec)
        self.optimizer = (optimizer_by_hand if by_hand else build.optimizer)(config, self.model)
        self.schedule = build.schedule(config, self.optimizer, trainer.length)
        self.data, self.batch_size, self.eval_batch_size = trainer.data, config.train.batch_size, config.train.eval_batch_size
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
        val_loss, val_acc = self.evaluate("val")
        assert val_loss == val_loss and 0 <= val_acc <= 1
        return time.perf_counter() - started

    @torch.no_grad()
    def evaluate(self, split: str) -> tuple[float, float]:
        """Loss and accuracy on a split, in batches of eval_batch_size as dlx takes them."""
        x, y = self.data[split]
        self.model.eval()
        loss, correct = torch.zeros((), device=x.device), torch.zeros((), dtype=torch.long, device=x.device)
        for i in range(0, len(x), self.eval_batch_size):
            out = self.model(x[i:i + self.eval_batch_size])
            target = y[i:i + self.eval_batch_size]
            loss += self.loss_fn(out, target) * len(target)
            correct += (out.argmax(1) == target).sum()
        return loss.item() / len(x), correct.item() / len(x)

    def final(self) -> float:
        """The final model on every split, as dlx's summary.json has it; returns the seconds taken."""
        started = time.perf_counter()
        assert all(0 <= self.evaluate(split)[1] <= 1 for split in ("train", "val", "test"))
        return time.perf_counter() - started


def in_step(config, terminal: Console, runs: Path) -> dict[str, float]:
    """Seconds of one training each by dlx and the two bare loops, epoch by epoch in turn."""
    epochs: dict[str, list[float]] = {"by hand": [], "same optimizer": []}

    def bare_epochs(epoch: int, values: dict) -> None:
        for name, bare in loops.items():
            epochs[name].append(bare.epoch())

    trainer = Trainer(config, terminal, on_epoch=bare_epochs)
    loops = {"by hand": BareLoop(trainer, by_hand=True), "same optimizer": BareLoop(trainer, by_hand=False)}
    dlx = dlx_loop(trainer, runs) - sum(sum(e) for e in epochs.values())
    return {"dlx": dlx, **{name: sum(epochs[name]) + bare.final() for name, bare in loops.items()}}


def dlx_loop(trainer: Trainer, runs: Path) -> float:
    """Seconds dlx takes to train its config from the seeded start to the summary, in a new folder under runs."""
    torch.manual_seed(trainer.config.seed)
    run = Run.create(runs, trainer.config.name)
    started = time.perf_counter()
    trainer.fit(run)
    run.close()
    return time.perf_counter() - started


def compare(experiment: str, args) -> dict:
    """Times dlx and both bare loops on one experiment; returns the seconds and the ratios (medians)."""
    # the bare loops measure validation loss and accuracy each epoch: dlx is asked for the same
    settings = [f"train.device={args.device}", "train.patience=null", "eval.metrics=[accuracy]"]
    settings += [f"train.epochs={args.epochs}"] if args.epochs else []
    settings += args.set
    config = load(BENCH / experiment if (BENCH / experiment).is_file() else EXPERIMENTS / experiment, settings)
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)  # the live display, rendered
    with tempfile.TemporaryDirectory() as tmp:
        # one epoch of each first, untimed: dlx's first epoch would otherwise pay for everybody's one-off costs
        # (oneDNN's convolution kernels are built on first use and cached for the process)
        in_step(config.model_copy(update={"train": config.train.model_copy(update={"epochs": 1})}), terminal, Path(tmp))
        runs = [in_step(config, terminal, Path(tmp)) for _ in range(args.repeats)]
    ratios = {name: [r["dlx"] / r[name] for r in runs] for name in ("by hand", "same optimizer")}
    median = {name: statistics.median(values) for name, values in ratios.items()}
    seconds = {name: statistics.median(r[name] for r in runs) for name in runs[0]}
    print(f"{experiment:24s} dlx {seconds['dlx']:6.3f}s  by hand {seconds['by hand']:6.3f}s  ratio {median['by hand']:.3f}"
          f"  | loop only: same optimizer {seconds['same optimizer']:6.3f}s  ratio {median['same optimizer']:.3f}"
          f"  (median of {args.repeats}: {' '.join(f'{r:.3f}' for r in ratios['by hand'])}; {config.train.epochs} "
          f"epochs, {args.device}, {torch.get_num_threads()} threads)")
    return {"seconds": seconds, "ratio_by_hand": median["by hand"], "ratio_loop_only": median["same optimizer"],
            "ratios_by_hand": ratios["by hand"], "ratios_loop_only": ratios["same optimizer"],
            "epochs": config.train.epochs, "device": args.device}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: PyTorch's choice)")
    parser.add_argument("--epochs", type=int, default=None, help="default: each experiment's own")
    overrides.add_option(parser)
    report.add_option(parser)
    parser.add_argument("experiments", nargs="*",
                        default=["digits_mlp_bench.yaml", "digits_cnn.yaml", "mnist_sized_cnn.yaml"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report.write(args, {experiment: compare(experiment, args) for experiment in args.experiments})


if __name__ == "__main__":
    main()
