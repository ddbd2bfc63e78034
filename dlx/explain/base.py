"""What every explainer shares: its result (tensors only), input checks and the map at the input's size.

An explainer is a registered function `method(model, x, target, *, settings...) -> Explanation`, where
`x` is one sample as the model sees it, (1, C, H, W) for images or (1, F) for tables, and `target` is
the class i whose logit xi_i (never the softmax) is explained. Drawing is render.py's job.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from dlx.errors import DlxError

Kind = Literal["map", "features", "image", "filters"]


@dataclass
class Explanation:
    raw: Tensor  # map: (h, w) at the method's own resolution; features: (F,); image: (C, H, W); filters: (O, I, kh, kw)
    kind: Kind
    params: dict[str, Any]  # every setting the method used, resolved (no None left for "automatic")
    extras: dict[str, Tensor] = field(default_factory=dict)  # further arrays worth saving (LIME's segments, ...)
    ranking: list[dict[str, Any]] | None = None  # LIME: superpixels (or features) by decreasing |weight|
    note: str | None = None  # what the reader of the figure must know, e.g. why a map is blank


def require_image(x: Tensor, method: str) -> None:
    if x.dim() != 4:
        raise DlxError(f"method '{method}' needs image inputs (C, H, W), but this model takes samples of shape "
                       f"{tuple(x.shape[1:])}; use saliency, occlusion or lime")


def differentiable(x: Tensor) -> Tensor:
    """A copy of the input that gradients can flow to, leaving the caller's tensor as it was."""
    return x.detach().clone().requires_grad_(True)


def per_pixel(attribution: Tensor) -> Tensor:
    """(1, C, H, W) -> (H, W) by the largest magnitude over channels; (1, F) -> (F,)."""
    a = attribution.detach()[0]
    return a.abs().amax(dim=0) if a.dim() == 3 else a


def default_sigma(size: tuple[int, int]) -> float:
    """Smoothing of the rescaled map: 1/16 of the image side, in pixels (0.5 for 8x8, 14 for 224x224)."""
    return max(size) / 16


def to_input_size(raw: Tensor, size: tuple[int, int], sigma: float) -> Tensor:
    """A map rescaled to the input (bilinear) and smoothed with a Gaussian of `sigma` pixels: (h, w) -> (H, W)."""
    from skimage.filters import gaussian

    up = F.interpolate(raw[None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0]
    if sigma <= 0:
        return up
    # scikit-image filters separably (two 1-d passes), which stays cheap for wide kernels on large images
    smoothed = gaussian(up.cpu().numpy(), sigma=sigma, mode="reflect", truncate=3.0, preserve_range=True)
    return torch.as_tensor(smoothed, dtype=up.dtype, device=up.device)
