"""Two-dimensional toy sets, as in TensorFlow Playground, generated from a seed."""
from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from sklearn.datasets import make_moons

from dlx.data.base import CLASSIFICATION, ArrayData

from dlx.registry import datasets

Size = Annotated[int, Field(ge=8, le=10_000_000)]
Noise = Annotated[float, Field(ge=0.0)]


@datasets.register("xor", "XOR: points around the four corners, class = which diagonal (not linearly separable)")
def xor(*, n: Size = 400, noise: Noise = 0.1, seed: int = 0) -> ArrayData:
    generator = torch.Generator().manual_seed(seed)
    corners = torch.randint(0, 2, (n, 2), generator=generator)
    x = corners.float() * 2 - 1 + noise * torch.randn(n, 2, generator=generator)
    y = corners[:, 0] ^ corners[:, 1]
    return ArrayData(x, y, CLASSIFICATION, ("same", "different"))


@datasets.register("moons", "two interleaving half circles (scikit-learn's make_moons)")
def moons(*, n: Size = 400, noise: Noise = 0.1, seed: int = 0) -> ArrayData:
    x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    return ArrayData(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y), CLASSIFICATION, ("upper", "lower"))
