"""A generative model's samples as one picture: a grid of images, shown as the data's pixels were before dlx
standardised them."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dlx.data.base import Standardizer
from dlx.models.modes import evaluating


def sample_grid(model: nn.Module, noise: Tensor, standardizer: Standardizer | None) -> Tensor:
    """The images `model.decode` draws from `noise`, in a square-ish grid (3, H, W) of values in [0, 1]: the run's
    standardisation undone (dlx's pixels are in [0, 1]; values a generator draws beyond them are clipped)."""
    from torchvision.utils import make_grid  # torchvision's import costs as much as a training epoch of digits

    with evaluating(model):
        images = model.decode(noise)  # (n, C, H, W), in the run's standardised scale
    if standardizer is not None:
        images = standardizer.invert(images)
    return make_grid(images.float().clamp(0, 1).cpu(), nrow=math.ceil(math.sqrt(len(images))), pad_value=0.5)


def fixed_noise(model: nn.Module, n: int, seed: int) -> Tensor:
    """n codes drawn once from a generator of their own (training's random numbers stay untouched), on the model's
    device: the same samples' progress can be watched over training."""
    device = next(model.parameters()).device
    return model.sample_noise(n, device, torch.Generator(device=device).manual_seed(seed))
