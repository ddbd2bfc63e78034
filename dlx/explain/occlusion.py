"""Occlusion: cover the input patch by patch (feature by feature for tables) and map how much the logit drops."""
from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn

from dlx.explain.base import Explanation, explainer, map_kind

Size = Annotated[int, Field(ge=1)]


@explainer("occlusion", "the logit's drop when a sliding patch (one feature, steps x features) is covered",
           inputs=("image", "table", "sequence"))
def occlusion(model: nn.Module, x: Tensor, target: int, *,
              # side of the square patch; None: a quarter of the image side, one step and feature of a sequence
              patch: Size | None = None,
              stride: Size | None = None,  # None: half the patch
              fill: float = 0.0,  # in the model's input space: 0 is the training mean when the run standardises
              batch_size: Size = 64) -> Explanation:  # occluded copies per forward pass
    from captum.attr import Occlusion  # captum when a method runs, not when the methods are listed

    if x.dim() == 2:  # a table: each feature is covered on its own
        patch, stride = 1, 1
        window, strides = (1,), (1,)
    elif x.dim() == 3:  # a sequence: `patch` steps of `patch` features (as many as it has, if fewer)
        patch = patch or 1
        stride = stride or max(1, patch // 2)
        window = tuple(min(patch, n) for n in x.shape[1:])
        strides = tuple(min(stride, n) for n in x.shape[1:])
    else:
        channels, height, width = x.shape[1:]
        patch = patch or max(1, min(height, width) // 4)
        stride = stride or max(1, patch // 2)
        window, strides = (channels, patch, patch), (channels, stride, stride)
    with torch.no_grad():
        attribution = Occlusion(model).attribute(x, target=target, sliding_window_shapes=window, strides=strides,
                                                 baselines=fill, perturbations_per_eval=batch_size)
    # every channel of a pixel is covered together, so their values agree: keep one, with its sign
    raw = attribution[0].mean(dim=0) if x.dim() == 4 else attribution[0]
    return Explanation(raw, map_kind(x), {"patch": patch, "stride": stride, "fill": fill, "batch_size": batch_size})
