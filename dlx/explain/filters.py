"""Filter visualisation: the first conv layer's filters as small images."""
from __future__ import annotations

from torch import Tensor, nn

from dlx.explain import layers
from dlx.explain.base import Explanation, explainer


@explainer("filters", "the first conv layer's filters as a grid of small images", requires=layers.needs_conv)
def filters(model: nn.Module, x: Tensor, target: int) -> Explanation:
    name, conv = layers.conv_layer(model, 0)
    return Explanation(conv.weight.detach().clone(), "filters", {"layer": name, "shape": list(conv.weight.shape)})
