"""What every generative model's protocol (sample_noise(n, device, generator) and decode(z)) gives the rest of dlx:
samples from the prior, decoded in batches, and images in the model's units turned back into pixels for display."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from dlx.data.base import Standardizer
from dlx.models.modes import evaluating

BATCH = 512  # codes decoded at once


def pixels(x: Tensor, standardizer: Standardizer | None) -> np.ndarray:
    """Model-space images (N, C, H, W) -> (N, H, W, C) in [0, 1] for display: the standardisation undone, then
    clipped to [0, 1], the range dlx's image datasets load pixels in; one scale for all, so a faint sample looks
    faint."""
    raw = standardizer.invert(x) if standardizer is not None else x
    return raw.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def sample(model: nn.Module, n: int, seed: int, device: torch.device) -> Tensor:
    """n samples decoded from the prior's codes, drawn by a generator of this seed: (n, *x) in the model's units."""
    generator = torch.Generator(device).manual_seed(seed)
    z = model.sample_noise(n, device, generator)
    with evaluating(model):
        return torch.cat([model.decode(z[i:i + BATCH]) for i in range(0, n, BATCH)])
