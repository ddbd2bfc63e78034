"""`dlx schedule`: a run's learning rate over its steps, computed and drawn without training.

The run's length comes from its data (train batches, grouped by train.accumulate, times epochs: the
loop's own RunLength) and the rates from the very schedule and optimizer the loop would build; the
model plays no part in the rates, so a one-weight stand-in takes its place.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dlx import build
from dlx.config import Config
from dlx.plots import plt, save
from dlx.run.records import check_figure_file
from dlx.schedules import RunLength


@dataclass
class Rates:
    length: RunLength
    lrs: list[float]  # lrs[t]: the rate of optimizer step t + 1, which training logs as train/lr at step t
    momenta: list[float | None]  # the momentum alongside, where the schedule cycles it
    initial_lr: float
    cycled: bool  # whether the schedule cycles the optimizer's momentum


def schedule_rates(config: Config) -> Rates:
    """The learning rate (and momentum) before each optimizer step of the run `config` describes."""
    data = build.splits(config, torch.device("cpu"))
    length = RunLength.of(config.train, len(data.batches("train", config.train.batch_size, shuffle=True)))
    optimizer = build.optimizer(config, nn.Linear(1, 1))
    schedule = build.schedule(config, optimizer, length)
    lrs, momenta = [], []
    for _ in range(length.total):
        lrs.append(optimizer.param_groups[0]["lr"])
        momenta.append(optimizer.param_groups[0].get("momentum"))
        optimizer.step()  # no gradients: nothing changes but the step count the schedule expects
        schedule.step()
    return Rates(length, lrs, momenta, optimizer.param_groups[0]["initial_lr"], schedule.momentum is not None)


def plot_schedule(config: Config, out: Path) -> Path:
    """Write a PNG of lr (and a cycled momentum) at every step of the run `config` describes."""
    check_figure_file(out)
    rates = schedule_rates(config)
    steps = range(rates.length.total)
    figure, axes = plt.subplots(2 if rates.cycled else 1, 1, figsize=(7, 5.5 if rates.cycled else 3.5), sharex=True,
                                squeeze=False)
    axes[0, 0].plot(steps, rates.lrs)
    axes[0, 0].set_ylabel("learning rate")
    if rates.cycled:
        axes[1, 0].plot(steps, rates.momenta, color="tab:orange")
        axes[1, 0].set_ylabel("momentum")
    axes[-1, 0].set_xlabel(f"optimizer step ({rates.length.per_epoch} per epoch)")
    note = " (without validation results: no reductions shown)" if config.schedule.name == "reduce_on_plateau" else ""
    warmup = f", warmup {config.schedule.warmup}" if config.schedule.warmup else ""
    axes[0, 0].set_title(f"{config.name}: {config.schedule.name}{warmup}, {config.optimizer.name} lr "
                         f"{rates.initial_lr:g}, {config.train.epochs} epochs{note}", fontsize=9)
    for ax in axes[:, 0]:
        ax.grid(alpha=0.3)
    return save(figure, out)
