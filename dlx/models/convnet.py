"""The shape shared by the classic CNNs: convolutional features, flattened, then a dense head."""
from __future__ import annotations

import torch
from torch import nn

from dlx.data.base import DataSpec
from dlx.models.init import InitName, initialize
from dlx.models.activations import ActivationName
from dlx.models.checks import classifier_outputs, feature_shape
from dlx.models.mlp import dense_stack


class ConvNet(nn.Module):
    """Convolutional features, flattened, then a dense head; the head's input size comes from a dry run."""

    def __init__(self, spec: DataSpec, name: str, features: list[nn.Module], hidden: list[int], act: ActivationName,
                 init: InitName, minimum: str, dropout: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(*features)
        initialize(self.features, init, act)
        widths = [feature_shape(self.features, spec.in_shape, name, minimum).numel(), *hidden]
        output = nn.Linear(widths[-1], classifier_outputs(spec, name))
        initialize(output, init, "identity")
        self.head = nn.Sequential(nn.Flatten(), *dense_stack(widths, act, init, dropout=dropout), output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, C, H, W) -> (B, C', H', W') -> (B, classes)
