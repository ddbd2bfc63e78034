"""Learning-rate schedules by name, stepped once per optimizer step.

Each is the course's formula for the factor eps(t) / eps0 at step t, wrapped in a LambdaLR.
"""
from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from dlx.registry import schedules

Steps = Annotated[float, Field(gt=0.0)]


@schedules.register("constant", "eps(t) = eps0")
def constant(optimizer: torch.optim.Optimizer, total_steps: int) -> LRScheduler:
    return LambdaLR(optimizer, lambda t: 1.0)


@schedules.register("power", "power scheduling: eps(t) = eps0 / (1 + t/s)")
def power(optimizer: torch.optim.Optimizer, total_steps: int, *, s: Steps = 1000.0) -> LRScheduler:
    return LambdaLR(optimizer, lambda t: 1.0 / (1.0 + t / s))


@schedules.register("exponential", "exponential scheduling: eps(t) = eps0 * 0.1 ** (t/s)")
def exponential(optimizer: torch.optim.Optimizer, total_steps: int, *, s: Steps = 1000.0) -> LRScheduler:
    return LambdaLR(optimizer, lambda t: 0.1 ** (t / s))


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


@schedules.register("one_cycle", "1cycle (Smith 2018): linear rise to eps1 = peak_factor*eps0, fall back, final drop")
def one_cycle(optimizer: torch.optim.Optimizer, total_steps: int, *, peak_factor: Annotated[float, Field(ge=1.0)] = 10.0,
              peak: Annotated[float, Field(gt=0.0, le=0.5)] = 0.45,
              final_drop: Annotated[float, Field(gt=0.0, le=1.0)] = 1e-3) -> LRScheduler:
    return LambdaLR(optimizer, lambda t: one_cycle_factor(t, total_steps, peak_factor, peak, final_drop))
