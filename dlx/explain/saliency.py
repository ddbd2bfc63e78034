"""Gradient saliency: importance of input k is |d xi_i / d x_k| at the fixed input (xi_i: the logit)."""
from __future__ import annotations

from torch import Tensor, nn

from dlx.explain.base import Explanation, differentiable, per_pixel
from dlx.registry import explainers


@explainers.register("saliency", "|d xi_i / d x|: how strongly each pixel (feature) moves the class logit",
                     tables=True)
def saliency(model: nn.Module, x: Tensor, target: int) -> Explanation:
    from captum.attr import Saliency

    attribution = Saliency(model).attribute(differentiable(x), target=target, abs=True)  # (1, C, H, W) or (1, F)
    if x.dim() == 2:
        return Explanation(per_pixel(attribution), "features", {})
    return Explanation(per_pixel(attribution), "map", {"channels": "the largest |gradient| of each pixel"})
