"""A model's own attention weights, for models that compute them.

The hook a model implements to be explained this way (and the only thing this method asks of it):

    def attention_maps(self, x: Tensor) -> dict[str, Tensor]:
        '''Every attention the forward pass of `x` computes, by a short name ("decoder", "layer0_head1", ...; the
        first is the main one): weights of shape (B, rows, columns), row r the distribution (summing to 1) of one
        query (an output step, or a position attending) over the columns (the positions attended to).'''

Attention does not depend on the class explained: the maps are the same for every --target.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from dlx.config import plain_name
from dlx.errors import DlxError
from dlx.explain.base import Explanation, explainer


def has_attention(model: nn.Module) -> str | None:
    """Why the attention method cannot explain `model`, or None when it implements attention_maps."""
    return None if callable(getattr(model, "attention_maps", None)) else "needs a model with attention, and this one has none"


@explainer("attention", "the model's attention weights: how much each step (output) attends to each input position",
           inputs=("image", "table", "sequence"), requires=has_attention)
def attention(model: nn.Module, x: Tensor, target: int) -> Explanation:
    with torch.no_grad():
        maps = model.attention_maps(x)
    names = [plain_name(str(name), f"map{i}") for i, name in enumerate(maps)]
    shapes = [tuple(weights.shape) for weights in maps.values()]
    if not maps or len(set(names)) < len(names) or any(len(s) != 3 or s[0] != len(x) for s in shapes):
        raise DlxError(f"{type(model).__name__}.attention_maps gave {dict(zip(names, shapes))}: it must give named "
                       f"weights of shape (batch, rows, columns) with distinct names")
    first, *rest = (weights[0].detach().float() for weights in maps.values())
    return Explanation(first, "attention", {"maps": names, "shapes": [list(s[1:]) for s in shapes],
                                            "target": "attention is the same for every class"},
                       extras=dict(zip(names[1:], rest)))
