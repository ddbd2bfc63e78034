"""The activation functions the course uses, by name."""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

ActivationName = Literal["relu", "leaky_relu", "elu", "selu", "gelu", "tanh", "lecun_tanh", "logistic",
                         "softplus", "identity"]


class LeCunTanh(nn.Module):
    """1.7159 tanh(2x/3): LeCun's scaled tanh, which keeps unit variance through the layer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1.7159 * torch.tanh(2.0 * x / 3.0)


_ACTIVATIONS = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "selu": nn.SELU, "gelu": nn.GELU,
    "tanh": nn.Tanh, "lecun_tanh": LeCunTanh, "logistic": nn.Sigmoid, "softplus": nn.Softplus,
    "identity": nn.Identity,
}


def activation(name: ActivationName) -> nn.Module:
    return _ACTIVATIONS[name]()
