"""An embedding head on any backbone (`model.embedding_head: D`): the backbone is built as if it regressed D numbers, so
its own output layer is the head, and its outputs are scaled to unit length, f(x) in R^D with ||f(x)|| = 1."""
from __future__ import annotations

import dataclasses

import torch.nn.functional as F
from torch import Tensor, nn

from dlx.data.base import REGRESSION, DataSpec


def head_spec(spec: DataSpec, width: int) -> DataSpec:
    """The data spec a backbone sizes its output layer from: `width` outputs."""
    return dataclasses.replace(spec, task=REGRESSION, num_classes=0, out_features=width, class_names=())


class Embedder(nn.Module):
    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.backbone(x).flatten(1), dim=1)  # (B, D), each row of length 1
