"""Data augmentation for in-memory image batches, on the training device, a fresh draw for every sample.

The geometric part (shift, flips, crop-and-zoom, rotation) is one affine map per sample, applied to the
whole batch by a single `grid_sample`; the colour part (brightness, contrast, saturation) is a few
per-sample blends. Draws come from a generator seeded by (run seed, optimizer step): the same run draws
the same augmentations, and a resumed run draws exactly what the uninterrupted one would have, with
no generator state to save.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from dlx.data.base import DataSpec, Standardizer
from dlx.data.settings import Augment
from dlx.errors import DlxError

class Augmenter:
    """Callable on a training batch: `augment(x, step) -> x'` with the same shape, dtype and device."""

    def __init__(self, config: Augment, seed: int, device: torch.device, standardizer: Standardizer | None = None):
        self.config, self.seed = config, seed
        self.generator = torch.Generator(device=device)
        # colour changes act on the original pixel values, so standardised batches are mapped back first
        self.standardizer = standardizer

    def __call__(self, x: Tensor, step: int) -> Tensor:  # (B, C, H, W)
        self.generator.manual_seed((self.seed * 0x9E3779B97F4A7C15 + step) % 2**64)  # distinct per (seed, step)
        if self.config.geometric:
            x = self._geometric(x)
        if self.config.colour:
            x = self._colour(x)
        return x

    def _uniform(self, n: int, low: float, high: float, device: torch.device) -> Tensor:
        return low + (high - low) * torch.rand(n, generator=self.generator, device=device)

    def _sign(self, n: int, enabled: bool, device: torch.device) -> Tensor:
        if not enabled:
            return torch.ones(n, device=device)
        return torch.randint(0, 2, (n,), generator=self.generator, device=device) * 2.0 - 1.0

    def _geometric(self, x: Tensor) -> Tensor:
        cfg, (b, _, h, w), dev = self.config, x.shape, x.device
        # theta maps each output position to where it samples the input, in coordinates [-1, 1]
        scale = self._uniform(b, cfg.crop, 1.0, dev)  # side fraction kept; < 1 zooms in
        angle = self._uniform(b, -cfg.rotate, cfg.rotate, dev) * (math.pi / 180)
        fx, fy = self._sign(b, cfg.hflip, dev), self._sign(b, cfg.vflip, dev)
        # the kept square lies anywhere inside the image, then the whole view moves by whole pixels
        tx = self._uniform(b, -1.0, 1.0, dev) * (1 - scale)
        ty = self._uniform(b, -1.0, 1.0, dev) * (1 - scale)
        k = cfg.shift
        tx = tx + torch.randint(-k, k + 1, (b,), generator=self.generator, device=dev) * (2.0 / w)
        ty = ty + torch.randint(-k, k + 1, (b,), generator=self.generator, device=dev) * (2.0 / h)
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([  # rotation in pixel units (H != W allowed), then zoom and flips
            torch.stack([cos * scale * fx, -sin * scale * fy * (h / w), tx], dim=1),
            torch.stack([sin * scale * fx * (w / h), cos * scale * fy, ty], dim=1),
        ], dim=1)  # (B, 2, 3)
        grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
        # whole-pixel moves and flips land on pixel centres: nearest keeps the values exact
        mode = "bilinear" if cfg.rotate or cfg.crop < 1.0 else "nearest"
        return F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=False)

    def _colour(self, x: Tensor) -> Tensor:
        cfg, b, dev = self.config, x.shape[0], x.device
        std = self.standardizer
        if std is not None:
            x = x * std.std.to(dev) + std.mean.to(dev)

        def factor(amount: float) -> Tensor:
            return self._uniform(b, 1 - amount, 1 + amount, dev).view(b, 1, 1, 1)

        if cfg.brightness:
            x = x * factor(cfg.brightness)
        if cfg.contrast:
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = mean + (x - mean) * factor(cfg.contrast)
        if cfg.saturation and x.shape[1] == 3:
            grey = (x * torch.tensor([0.299, 0.587, 0.114], device=dev, dtype=x.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
            x = grey + (x - grey) * factor(cfg.saturation)
        return std(x) if std is not None else x


def augmenter(config: Augment, spec: DataSpec, seed: int, device: torch.device,
              standardizer: Standardizer | None) -> Augmenter | None:
    """The augmenter a run's config asks for, or None when every augmentation is off."""
    if not (config.geometric or config.colour):
        return None
    if not spec.is_image:
        raise DlxError(f"data.augment: augmentations need images (C, H, W), but this dataset's samples have shape "
                       f"{spec.in_shape}; remove data.augment")
    return Augmenter(config, seed, device, standardizer)
