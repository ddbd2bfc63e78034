"""`dlx schedule`: a run's learning rate over its steps, computed and drawn without training.

The run's length comes from its data (train examples / batch size, times epochs) and the rates from
the very schedule and optimizer the loop would build; the model plays no part in the rates, so a
one-weight stand-in takes its place.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from dlx import build
from dlx.config import Config
from dlx.plots import plt, save


def plot_schedule(config: Config, out: Path) -> Path:
    """Write a PNG of lr (and a cycled momentum) at every step of the run `config` describes."""
    data = build.splits(config, torch.device("cpu"))
    per_epoch = len(data.batches("train", config.train.batch_size, shuffle=True))
    total = config.train.epochs * per_epoch
    optimizer = build.optimizer(config, nn.Linear(1, 1))
    schedule = build.schedule(config, optimizer, total)
    lrs, momenta = [], []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        momenta.append(optimizer.param_groups[0].get("momentum"))
        optimizer.step()  # no gradients: nothing changes but the step count the schedule expects
        schedule.step()

    cycled = schedule.momentum is not None
    figure, axes = plt.subplots(2 if cycled else 1, 1, figsize=(7, 5.5 if cycled else 3.5), sharex=True, squeeze=False)
    axes[0, 0].plot(range(total), lrs)
    axes[0, 0].set_ylabel("learning rate")
    if cycled:
        axes[1, 0].plot(range(total), momenta, color="tab:orange")
        axes[1, 0].set_ylabel("momentum")
    axes[-1, 0].set_xlabel(f"optimizer step ({per_epoch} per epoch)")
    note = " (without validation results: no reductions shown)" if config.schedule.name == "reduce_on_plateau" else ""
    warmup = f", warmup {config.schedule.warmup}" if config.schedule.warmup else ""
    axes[0, 0].set_title(f"{config.name}: {config.schedule.name}{warmup}, {config.optimizer.name} lr "
                         f"{optimizer.param_groups[0]['initial_lr']:g}, {config.train.epochs} epochs{note}", fontsize=9)
    for ax in axes[:, 0]:
        ax.grid(alpha=0.3)
    return save(figure, out)
