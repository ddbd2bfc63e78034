"""How much one command may ask for: every count, range and size a user gives is checked against these before
any work starts, so a typo such as a factor of 1.0000000001 or --steps 1000000000 is one line, not a machine
that hangs or runs out of memory. The limits are generous for real work and finite."""
from __future__ import annotations

import math

from dlx.errors import DlxError

GRID_VALUES = 100_000  # values of one sweep parameter, and points of a whole grid
MARGINS = 100_000  # reject-option margins of one evaluation
LR_FIND_STEPS = 100_000  # steps of one learning-rate ramp
NEW_TOKENS = 1_000_000  # characters generated per sample
SAMPLES = 10_000  # samples of one dlx generate
TOKENS_HELD = 10_000_000  # characters generation keeps in memory: all samples, or every beam
PROCESSES = 1_024  # ranks `dlx train --nproc` starts on one machine


def steps(start: float, stop: float, step: float) -> int | float:
    """How many of start, start + step, ... stay <= stop (the stop counts when the steps reach it up to rounding),
    counted without listing them; inf when there is no end."""
    spans = (stop - start) / step
    return math.floor(spans + 1e-9) + 1 if math.isfinite(spans) else math.inf


def problem(what: str, count: int | float, limit: int, unit: str) -> str | None:
    """The one line that refuses `count` when it exceeds `limit`, or None."""
    if count <= limit:
        return None
    amount = f"{count:,}" if isinstance(count, int) else "too many to count" if math.isinf(count) else f"{count:,.0f}"
    return f"{what}: {amount} {unit}, more than the {limit:,} dlx allows at once"


def check(what: str, count: int | float, limit: int, unit: str) -> None:
    """Raise `problem`'s line when `count` exceeds `limit`."""
    if (line := problem(what, count, limit, unit)) is not None:
        raise DlxError(line)
