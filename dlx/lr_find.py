"""`dlx lr-find`: the course's learning-rate search, done as one exponential ramp (Smith's LR range test).

The course tries 0.001 ... 0.1, multiplying by 2, trains a few epochs each and compares the learning
curves. The ramp asks the same question in a few hundred steps: one model, trained from its
initialisation while the learning rate grows by the same factor every step from --start to --end. The
loss first stays flat (too small a rate to matter), then falls, then climbs as the rate gets too
large; the search stops once the smoothed loss exceeds 4 times its minimum.

The suggestion is the rate at the smoothed loss's minimum, divided by 10. Not the steepest descent:
a slope is a difference of neighbouring noisy values, so on a short ramp its argmin jumps from seed to
seed, while the minimum is a stable landmark. At the minimum the rate is already about to be too large
(and the smoothing, lagging behind, places it a little late); a tenth of it lies on the falling part
of the curve, where training makes fast, stable progress.

The ramp takes the loop's own training step (Trainer.train_batch: precision, compile, train.grad_clip and
data.augment as configured), with the ramp's rate in place of the schedule's. Its steps are training's optimizer
steps (dlx.schedules.RunLength): with train.accumulate: k each adds up the gradients of k batches, as training does.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from dlx import limits
from dlx.config import Config
from dlx.errors import DlxError
from dlx.plots import plt, save
from dlx.run.records import check_figure_file
from dlx.train.loop import Trainer

DIVERGED = 4.0  # stop once the smoothed loss exceeds this multiple of its minimum
FACTOR = 10.0  # the suggestion is the minimum's rate divided by this


@dataclass
class Ramp:
    lrs: list[float]  # the rate of every step taken
    losses: list[float]  # each step's training loss
    smoothed: list[float]  # their bias-corrected exponential moving average
    steps: int  # the ramp's planned length; len(lrs) < steps when it stopped early
    best: int  # the index of the smoothed loss's minimum
    suggestion: float

    @property
    def stopped_early(self) -> bool:
        return len(self.lrs) < self.steps

    @property
    def hint(self) -> str | None:
        """What to change when the ramp missed the interesting range."""
        if self.best == 0:
            return "the loss was lowest at the first step: try a smaller --start"
        if self.best == len(self.lrs) - 1 and not self.stopped_early:
            return "the loss was still falling at the last step: try a larger --end"
        return None


def check(steps: int, start: float, end: float) -> None:
    if steps < 10:
        raise DlxError(f"--steps {steps}: give at least 10 steps (a few hundred trace the curve well)")
    limits.check("--steps", steps, limits.LR_FIND_STEPS, "steps")
    if not 0 < start < end or not math.isfinite(end):
        raise DlxError(f"--start {start:g} --end {end:g}: give 0 < start < end, e.g. --start 1e-7 --end 10")


def rates(steps: int, start: float, end: float) -> list[float]:
    """start * q**k for k = 0 .. steps-1, with q fixed so that the last rate is `end`."""
    return [start * (end / start) ** (k / (steps - 1)) for k in range(steps)]


def smoothing(steps: int) -> float:
    """The moving average's decay: it averages about steps/20 losses, enough to see through batch noise
    without lagging far behind the ramp (0.98, fastai's value for 100 steps, would lag 50 steps)."""
    return min(0.98, max(0.5, 1.0 - 20.0 / steps))


def optimizer_steps(trainer: Trainer) -> Iterator[list[tuple[Tensor, Tensor]]]:
    """The training batches of each optimizer step, epoch after epoch, each epoch freshly shuffled as in training."""
    length = trainer.length
    while True:
        group = []
        for number, batch in enumerate(trainer.train_batches.epoch(trainer.data_order), start=1):
            group.append(batch)
            if length.ends_step(number):
                yield group
                group = []


def ramp(config: Config, steps: int = 300, start: float = 1e-7, end: float = 10.0) -> Ramp:
    """Train the run's model from its initialisation along the ramp; nothing is written."""
    check(steps, start, end)
    trainer = Trainer(config, quiet=True)
    if len(trainer.groups) > 1:
        raise DlxError(f"dlx lr-find ramps one optimizer's rate; objective '{config.objective.name}' trains "
                       f"{len(trainer.groups)} ({', '.join(trainer.groups)}) against each other, whose losses do not "
                       f"trace a rate's effect: tune each group's lr with dlx sweep")
    optimizer, weight = trainer.optimizers[trainer.groups[0]], 1.0 / config.train.accumulate
    schedule = rates(steps, start, end)
    beta, average = smoothing(steps), 0.0
    taken: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    batches = 0  # trained on so far: keys each batch's augmentation
    trainer.model.train()
    for lr, batch_group in zip(schedule, optimizer_steps(trainer)):
        for group in optimizer.param_groups:
            group["lr"] = lr
        step_losses = []
        for i, (x, y) in enumerate(batch_group, start=1):
            if trainer.augment is not None:
                x = trainer.augment(x, batches)
            batches += 1
            step_losses += trainer.train_batch(x, y, weight, complete=i == len(batch_group)).values()
        if len(step_losses) < len(batch_group):  # train.on_nan=skip left a batch out: the ramp has diverged
            break
        value = torch.stack(step_losses).mean().item()  # read every step: the stopping rule needs it
        if not math.isfinite(value):
            break
        average = beta * average + (1 - beta) * value
        taken.append(lr)
        losses.append(value)
        smoothed.append(average / (1 - beta ** len(taken)))
        low = min(smoothed)
        if low > 0 and smoothed[-1] > DIVERGED * low:
            break
    if not taken:
        raise DlxError(f"the loss was not finite at the first step (lr {start:g}): check the data and the model")
    best = min(range(len(smoothed)), key=smoothed.__getitem__)
    return Ramp(taken, losses, smoothed, steps, best, max(start, taken[best] / FACTOR))


def plot(result: Ramp, title: str, out: Path) -> Path:
    """Loss against learning rate on a log axis, with the minimum and the suggestion marked."""
    figure, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(result.lrs, result.losses, color="grey", alpha=0.35, linewidth=0.8, label="loss per step")
    ax.plot(result.lrs, result.smoothed, color="C0", label="smoothed")
    ax.set_xscale("log")
    ax.axvline(result.lrs[result.best], color="grey", linestyle=":",
               label=f"minimum at {result.lrs[result.best]:.2g}")
    ax.axvline(result.suggestion, color="C3", linestyle="--", label=f"suggested lr {result.suggestion:.2g}")
    low, high = min(result.smoothed), max(result.smoothed)
    pad = 0.1 * (high - low) or 0.1
    ax.set_ylim(min(low, min(result.losses)) - pad, high + pad)  # a last raw spike would flatten the curve
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ended = f"stopped at step {len(result.lrs)}: diverged" if result.stopped_early else f"{result.steps} steps"
    ax.set_title(f"{title}: learning-rate range test ({ended})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(figure, out)


def lr_find(config: Config, steps: int, start: float, end: float, out: Path | None) -> tuple[Ramp, Path]:
    """The ramp and its PNG (default: ./<name>-lr-find.png); returns both."""
    if out is not None:  # before the ramp is trained
        check_figure_file(out)
        if out.suffix.lower() != ".png":
            raise DlxError(f"--out {out}: give a .png file name")
    result = ramp(config, steps, start, end)
    return result, plot(result, config.name, out or Path(f"{config.name}-lr-find.png"))
