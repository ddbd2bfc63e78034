"""Two-dimensional toy sets, as in TensorFlow Playground, generated from a seed."""
from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field

from dlx.data.base import CLASSIFICATION, ArrayData
from dlx.data.checks import require_memory
from dlx.registry import datasets

Size = Annotated[int, Field(ge=8, le=10_000_000)]
Noise = Annotated[float, Field(ge=0.0)]
Seed = Annotated[int, Field(ge=0, lt=2**32)]  # scikit-learn takes 32-bit seeds


@datasets.register("xor", "XOR: points around the four corners, class = which diagonal (not linearly separable)")
def xor(*, n: Size = 400, noise: Noise = 0.1, seed: Seed = 0) -> ArrayData:
    generator = torch.Generator().manual_seed(seed)
    corners = torch.randint(0, 2, (n, 2), generator=generator)
    x = corners.float() * 2 - 1 + noise * torch.randn(n, 2, generator=generator)
    y = corners[:, 0] ^ corners[:, 1]
    return ArrayData(x, y, CLASSIFICATION, ("same", "different"))


@datasets.register("moons", "two interleaving half circles (scikit-learn's make_moons)")
def moons(*, n: Size = 400, noise: Noise = 0.1, seed: Seed = 0) -> ArrayData:
    from sklearn.datasets import make_moons  # scikit-learn when a set is made, not when listed

    x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
    return _points(x, y, ("upper", "lower"))


def _points(x, y, names: tuple[str, ...]) -> ArrayData:
    return ArrayData(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long), CLASSIFICATION, names)


@datasets.register("circles", "a ring around a disc: two concentric circles (scikit-learn's make_circles)")
def circles(*, n: Size = 400, noise: Noise = 0.1, factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5,
            seed: Seed = 0) -> ArrayData:
    """factor: radius of the inner circle relative to the outer one."""
    from sklearn.datasets import make_circles

    x, y = make_circles(n_samples=n, noise=noise, factor=factor, random_state=seed)
    return _points(x, y, ("outer", "inner"))


@datasets.register("spirals", "interleaved spiral arms, one class per arm (TensorFlow Playground's hardest set)")
def spirals(*, n: Size = 400, noise: Noise = 0.1, arms: Annotated[int, Field(ge=2, le=10)] = 2,
            turns: Annotated[float, Field(gt=0.0, le=5.0)] = 1.5, seed: Seed = 0) -> ArrayData:
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % arms
    r = torch.rand(n, generator=generator)  # distance from the centre, 0..1
    angle = 2 * math.pi * (turns * r + y / arms)  # each arm is the first one rotated
    x = torch.stack([r * torch.cos(angle), r * torch.sin(angle)], dim=1) + noise * torch.randn(n, 2, generator=generator)
    return ArrayData(x, y, CLASSIFICATION, tuple(f"arm {i}" for i in range(arms)))


@datasets.register("blobs", "Gaussian clusters, one class each (scikit-learn's make_blobs)")
def blobs(*, n: Size = 400, centers: Annotated[int, Field(ge=2, le=100)] = 3,
          features: Annotated[int, Field(ge=1, le=100_000)] = 2, noise: Noise = 1.0, seed: Seed = 0) -> ArrayData:
    """noise: the clusters' standard deviation; centers are drawn in [-10, 10]^features."""
    require_memory(n * features * (8 + 4), f"data.n={n} points of data.features={features}",
                   "lower one of them")  # scikit-learn's float64, then float32
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=n, centers=centers, n_features=features, cluster_std=noise, random_state=seed)
    return _points(x, y, tuple(f"blob {i}" for i in range(centers)))
