"""The samples to explain: image files prepared exactly as the run's data, or rows of one of its splits."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dlx.data.base import DataSpec, Splits, Standardizer
from dlx.config import plain_name
from dlx.data.images import read_pixels
from dlx.errors import DlxError


@dataclass
class Sample:
    name: str  # the output folder's name: the file's stem, or <split>-<index>
    x: Tensor  # (1, *in_shape), as the model sees it (standardised like the run's data)
    source: str  # where it came from, for explanation.json
    label: Tensor | None = None  # the true class (one per step for per-step labels), when it comes from a split


def read_image(path: Path, spec: DataSpec, standardizer: Standardizer | None, device: torch.device) -> Tensor:
    """Like the run's datasets: pixels scaled to [0, 1], resized to the model's (H, W), grey or RGB as the model
    takes, then standardised with the run's own statistics. Returns (1, C, H, W)."""
    if not spec.is_image:
        raise DlxError(f"--input {path}: this run's model takes tables of {spec.in_shape[0]} features, not images; "
                       f"explain rows of a split with --index")
    pixels = read_pixels(path, spec.in_shape, f"--input {path}")
    x = torch.as_tensor(pixels)[None].to(device)  # (1, C, H, W)
    return standardizer(x) if standardizer is not None else x


def from_files(paths: list[Path], spec: DataSpec, standardizer: Standardizer | None, device: torch.device) -> list[Sample]:
    samples, names = [], set()
    for path in paths:
        name = plain_name(path.stem, "input")  # a file named '..' must not take the output out of --out
        while name in names:
            name += "_"
        names.add(name)
        samples.append(Sample(name, read_image(path, spec, standardizer, device), str(path)))
    return samples


def from_split(data: Splits, split: str, indices: list[int]) -> list[Sample]:
    if split not in data.parts:
        raise DlxError(f"--split '{split}': choose {', '.join(data.parts)}")
    x, y = data[split]
    samples = []
    for index in indices:
        if not 0 <= index < len(x):
            raise DlxError(f"--index {index}: the {split} split has {len(x)} samples (0..{len(x) - 1})")
        samples.append(Sample(f"{split}-{index}", x[index : index + 1], f"{split}[{index}]", y[index]))
    return samples


def for_display(x: Tensor, standardizer: Standardizer | None) -> np.ndarray:
    """A model input back in pixel space for drawing: (1, C, H, W) or (C, H, W) -> (H, W, C) in [0, 1]."""
    x = x.detach().reshape(1, *x.shape[-3:])
    if standardizer is not None:
        x = x * standardizer.std.to(x.device) + standardizer.mean.to(x.device)
    image = x[0].permute(1, 2, 0).cpu().double().numpy()
    low, high = image.min(), image.max()
    if low < 0 or high > 1:  # e.g. a class visualisation, which may leave the data's range
        image = (image - low) / max(high - low, 1e-12)
    return image


def sequence_for_display(x: Tensor, standardizer: Standardizer | None) -> np.ndarray:
    """A sequence as the data holds it, before standardisation: (1, T, F) -> (T, F)."""
    x = x.detach()
    if standardizer is not None:
        x = standardizer.invert(x)
    return x[0].cpu().double().numpy()
