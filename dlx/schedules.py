"""Learning-rate schedules by name, stepped once per optimizer step.

Each entry is the course's formula for the factor eps(t) / eps0 at step t. `Schedule` turns a factor
into a PyTorch scheduler and adds what every schedule may have: a linear warm-up (the schedule
section's `warmup: N`, multiplied in, so it works on top of any entry) and, for 1cycle, a momentum
that moves inversely to the rate. reduce_on_plateau is the one schedule driven by validation results:
the loop calls `end_epoch` on every schedule once per epoch, and only that one listens.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import torch
from pydantic import Field
from torch.optim.lr_scheduler import LRScheduler

from dlx.errors import DlxError
from dlx.registry import schedules

if TYPE_CHECKING:
    from dlx.config import TrainSection

Steps = Annotated[float, Field(gt=0.0)]
Factor = Annotated[float, Field(gt=0.0, le=1.0)]


@dataclass(frozen=True)
class RunLength:
    """A run's optimizer steps: each epoch's train batches in groups of train.accumulate, the epoch's last group
    taking what is left (an epoch always ends on a step), over train.epochs epochs. The loop, `dlx schedule`,
    `dlx lr-find` and every schedule count steps this one way."""

    epochs: int
    batches: int  # train batches per epoch
    accumulate: int = 1  # batches per optimizer step

    @classmethod
    def of(cls, train: TrainSection, batches: int) -> RunLength:
        return cls(train.epochs, batches, train.accumulate)

    @property
    def per_epoch(self) -> int:
        return math.ceil(self.batches / self.accumulate)

    @property
    def total(self) -> int:
        return self.epochs * self.per_epoch

    def ends_step(self, batch: int) -> bool:
        """Whether an epoch's batch number `batch` (counted from 1) completes an optimizer step."""
        return batch % self.accumulate == 0 or batch >= self.batches


@dataclass(frozen=True)
class RunSteps:
    """The run's length as the schedules see it."""

    total: int  # optimizer steps in the whole run
    per_epoch: int  # optimizer steps per epoch
    warmup: int = 0  # steps of linear warm-up, multiplied into any schedule


class Schedule(LRScheduler):
    """lr(t) = lr0 * warmup(t) * factor(t); momentum(t), when given, is written into groups that use momentum."""

    def __init__(self, optimizer: torch.optim.Optimizer, steps: RunSteps, factor: Callable[[int], float],
                 momentum: Callable[[int], float] | None = None):
        self.steps, self.factor = steps, factor
        # only optimizers that already use momentum get it cycled (SGD/RMSProp with momentum > 0)
        self.momentum = momentum if any(g.get("momentum", 0) > 0 for g in optimizer.param_groups) else None
        super().__init__(optimizer)

    def scale(self, t: int) -> float:
        """lr(t) / lr0."""
        warmup = self.steps.warmup
        return self.factor(t) * (min(1.0, (t + 1) / warmup) if warmup else 1.0)

    def get_lr(self) -> list[float]:
        t = self.last_epoch
        if self.momentum is not None:
            for group in self.optimizer.param_groups:
                group["momentum"] = self.momentum(t)
        return [base * self.scale(t) for base in self.base_lrs]

    def end_epoch(self, improved: bool) -> None:
        """Called by the loop after each validation, with whether the monitored metric improved."""

    def state_dict(self) -> dict[str, Any]:
        # the formulas are rebuilt from the config; a checkpoint keeps only counters and plain numbers
        return {k: v for k, v in super().state_dict().items() if k not in ("steps", "factor", "momentum")}


@schedules.register("constant", "eps(t) = eps0")
def constant(optimizer: torch.optim.Optimizer, steps: RunSteps) -> Schedule:
    return Schedule(optimizer, steps, lambda t: 1.0)


@schedules.register("power", "power scheduling: eps(t) = eps0 / (1 + t/s)")
def power(optimizer: torch.optim.Optimizer, steps: RunSteps, *, s: Steps = 1000.0) -> Schedule:
    return Schedule(optimizer, steps, lambda t: 1.0 / (1.0 + t / s))


@schedules.register("exponential", "exponential scheduling: eps(t) = eps0 * 0.1 ** (t/s)")
def exponential(optimizer: torch.optim.Optimizer, steps: RunSteps, *, s: Steps = 1000.0) -> Schedule:
    return Schedule(optimizer, steps, lambda t: 0.1 ** (t / s))


@schedules.register("piecewise", "piecewise constant: eps0 times the k-th factor from the k-th boundary on (in epochs or steps)")
def piecewise(optimizer: torch.optim.Optimizer, steps: RunSteps, *,
              boundaries: tuple[Annotated[float, Field(ge=0.0)], ...] = (10.0, 20.0),
              factors: tuple[Annotated[float, Field(gt=0.0)], ...] = (1.0, 0.1, 0.01),
              unit: Literal["epochs", "steps"] = "epochs") -> Schedule:
    if len(factors) != len(boundaries) + 1:
        raise DlxError(f"schedule.factors: give one factor more than boundaries ({len(boundaries)} boundaries, "
                       f"{len(factors)} factors): the first applies before the first boundary")
    if any(a >= b for a, b in zip(boundaries, boundaries[1:])):
        raise DlxError(f"schedule.boundaries: must increase, got {boundaries}")
    per_unit = steps.per_epoch if unit == "epochs" else 1
    return Schedule(optimizer, steps, lambda t: factors[bisect.bisect_right(boundaries, t // per_unit)])


def one_cycle_factor(t: int, total_steps: int, peak_factor: float, peak: float, final_drop: float) -> float:
    """The course's 1cycle: up linearly to peak_factor*eps0 at `peak` of the run, down to eps0 at twice that,
    then linearly down to final_drop*eps0 over the remaining steps."""
    rise_end = peak * total_steps
    fall_end = 2 * rise_end
    if t <= rise_end:
        return 1.0 + (peak_factor - 1.0) * t / rise_end
    if t <= fall_end:
        return peak_factor - (peak_factor - 1.0) * (t - rise_end) / rise_end
    tail = max(total_steps - fall_end, 1.0)
    return 1.0 - (1.0 - final_drop) * min((t - fall_end) / tail, 1.0)


@schedules.register("one_cycle", "1cycle (Smith 2018): linear rise to eps1 = peak_factor*eps0, fall back, final drop; "
                                 "momentum cycles the other way")
def one_cycle(optimizer: torch.optim.Optimizer, steps: RunSteps, *, peak_factor: Annotated[float, Field(ge=1.0)] = 10.0,
              peak: Annotated[float, Field(gt=0.0, le=0.5)] = 0.45,
              final_drop: Annotated[float, Field(gt=0.0, le=1.0)] = 1e-3,
              momentum: tuple[Factor, Factor] | None = (0.85, 0.95)) -> Schedule:
    """momentum = (at the peak rate, at eps0): e.g. 0.95 -> 0.85 -> 0.95, for optimizers with momentum; null: keep it."""

    def factor(t: int) -> float:
        return one_cycle_factor(t, steps.total, peak_factor, peak, final_drop)

    def cycled_momentum(t: int) -> float:
        low, high = momentum
        rise = (factor(t) - 1.0) / (peak_factor - 1.0) if peak_factor > 1.0 else 0.0
        return high - (high - low) * min(max(rise, 0.0), 1.0)

    return Schedule(optimizer, steps, factor, cycled_momentum if momentum is not None else None)


@schedules.register("cosine", "cosine annealing: eps(t) = eps0 * (m + (1 - m) * (1 + cos(pi t / T)) / 2)")
def cosine(optimizer: torch.optim.Optimizer, steps: RunSteps, *,
           min_factor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0) -> Schedule:
    total = max(steps.total, 1)
    return Schedule(optimizer, steps,
                    lambda t: min_factor + (1.0 - min_factor) * (1.0 + math.cos(math.pi * min(t, total) / total)) / 2)


class ReduceOnPlateau(Schedule):
    """Multiply the rate by `factor` after `patience` epochs in a row without improvement of train.monitor."""

    def __init__(self, optimizer: torch.optim.Optimizer, steps: RunSteps, patience: int, factor: float, floor: float):
        self.patience, self.reduce_by, self.floor = patience, factor, floor
        self.reduction, self.bad_epochs = 1.0, 0  # state: saved in checkpoints
        super().__init__(optimizer, steps, lambda t: self.reduction)

    def end_epoch(self, improved: bool) -> None:
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        if self.bad_epochs >= self.patience:
            self.reduction, self.bad_epochs = max(self.reduction * self.reduce_by, self.floor), 0
            for group, lr in zip(self.optimizer.param_groups, self.get_lr()):  # from the next step on
                group["lr"] = lr
            self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


@schedules.register("reduce_on_plateau", "multiply eps by factor (1/2) after patience (3) epochs without improvement "
                                         "of train.monitor")
def reduce_on_plateau(optimizer: torch.optim.Optimizer, steps: RunSteps, *,
                      patience: Annotated[int, Field(ge=1)] = 3, factor: Factor = 0.5,
                      floor: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0) -> Schedule:
    """floor: the smallest rate, as a fraction of eps0."""
    return ReduceOnPlateau(optimizer, steps, patience, factor, floor)
