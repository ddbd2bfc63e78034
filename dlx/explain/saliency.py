"""Gradient saliency: importance of input k is |d xi_i / d x_k| at the fixed input (xi_i: the logit)."""
from __future__ import annotations

from torch import Tensor, nn

from dlx.explain.base import Explanation, differentiable, explainer, gradients_through, map_kind, per_pixel


@explainer("saliency", "|d xi_i / d x|: how strongly each pixel (feature, step) moves the class logit",
                     inputs=("image", "table", "sequence"))
def saliency(model: nn.Module, x: Tensor, target: int) -> Explanation:
    from captum.attr import Saliency

    with gradients_through(model):
        attribution = Saliency(model).attribute(differentiable(x), target=target, abs=True)  # the shape of x
    params = {"channels": "the largest |gradient| of each pixel"} if x.dim() == 4 else {}
    return Explanation(per_pixel(attribution), map_kind(x), params)
