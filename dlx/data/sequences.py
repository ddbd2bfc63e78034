"""Sequence toy tasks for recurrent networks, generated from a seed. Inputs are (N, T, F) float tensors."""
from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor

from dlx.data.base import CLASSIFICATION, ArrayData
from dlx.data.checks import require_memory
from dlx.errors import DlxError
from dlx.registry import datasets

Size = Annotated[int, Field(ge=8, le=1_000_000)]
Seed = Annotated[int, Field(ge=0, lt=2**63)]  # what torch.Generator takes


def ends(bits: Tensor, pattern: str) -> Tensor:
    """(N, T) bits and a pattern like '1011' -> (N, T): whether the pattern ends at each step."""
    k, span = len(pattern), bits.shape[1] - len(pattern) + 1
    # each window of k bits read as a binary number, compared with the pattern's number
    code = sum(bits[:, j : j + span].long() << (k - 1 - j) for j in range(k))
    return torch.nn.functional.pad(code == int(pattern, 2), (k - 1, 0))  # no window ends in the first k-1 steps


def contains(bits: Tensor, pattern: str) -> Tensor:
    """(N, T) bits -> (N,) whether the pattern occurs anywhere in each row."""
    return ends(bits, pattern).any(1)


@datasets.register("bitpattern", "bit streams: does the pattern 1011 occur? (per sequence, balanced classes; or "
                                 "per step: does it end here?; input (T, 1))")
def bitpattern(*, n: Size = 2000, length: Annotated[int, Field(ge=1, le=64)] = 16,
               pattern: Annotated[str, Field(pattern=r"^[01]{1,16}$")] = "1011", per_step: bool = False,
               seed: Seed = 0) -> ArrayData:
    """Uniformly random streams, drawn until half contain the pattern and half do not. per_step: labels (N, T),
    1 where the pattern has just ended (for a model with a prediction per step, e.g. rnn with output: steps)."""
    if length < len(pattern):
        raise DlxError(f"data.length: {length} is shorter than the pattern '{pattern}'")
    generator = torch.Generator().manual_seed(seed)
    n_present, n_absent = n - n // 2, n // 2
    present: list[Tensor] = []
    absent: list[Tensor] = []
    for _ in range(1000):
        bits = torch.randint(0, 2, (max(n, 4096), length), generator=generator, dtype=torch.uint8)
        hit = contains(bits, pattern)
        present.append(bits[hit])
        absent.append(bits[~hit])
        if sum(map(len, present)) >= n_present and sum(map(len, absent)) >= n_absent:
            break
    else:
        raise DlxError(f"data: random streams of length {length} almost never (or almost always) contain "
                       f"'{pattern}'; choose another length")
    x = torch.cat([torch.cat(present)[:n_present], torch.cat(absent)[:n_absent]])
    y = torch.cat([torch.ones(n_present, dtype=torch.long), torch.zeros(n_absent, dtype=torch.long)])
    order = torch.randperm(n, generator=generator)
    x, y = x[order], (ends(x[order], pattern).long() if per_step else y[order])
    return ArrayData(x.float().unsqueeze(-1), y, CLASSIFICATION, ("absent", "present"))


@datasets.register("runsum", "digit streams: their sum modulo 10 (the running sum's last value; or per step: the "
                             "running sum; input (T, 10) one-hot)")
def runsum(*, n: Size = 2000, length: Annotated[int, Field(ge=1, le=1000)] = 8, per_step: bool = False,
           seed: Seed = 0) -> ArrayData:
    """per_step: labels (N, T), the running sum modulo 10 after each digit."""
    require_memory(n * length * (8 * 3 + 10 * 4), f"data.n={n} streams of data.length={length} digits",
                   "lower one of them")  # digits, running sums, labels as int64; one-hot inputs as float32
    generator = torch.Generator().manual_seed(seed)
    digits = torch.randint(0, 10, (n, length), generator=generator)
    x = torch.nn.functional.one_hot(digits, 10).float()  # (N, T, 10)
    running = digits.cumsum(1) % 10
    return ArrayData(x, running if per_step else running[:, -1], CLASSIFICATION, tuple(str(d) for d in range(10)))
