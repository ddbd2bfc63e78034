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


class Logistic(nn.Module):
    """1 / (1 + exp(-lambda x)): the logistic function with steepness lambda (1 is the plain sigmoid)."""

    def __init__(self, steepness: float = 1.0):
        super().__init__()
        self.steepness = steepness

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.steepness * x)

    def extra_repr(self) -> str:
        return f"steepness={self.steepness}"


_ACTIVATIONS = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "selu": nn.SELU, "gelu": nn.GELU,
    "tanh": nn.Tanh, "lecun_tanh": LeCunTanh, "softplus": nn.Softplus, "identity": nn.Identity,
}


def activation(name: ActivationName, steepness: float = 1.0) -> nn.Module:
    """The activation `name`; `steepness` is the lambda of the logistic function and is ignored by the others."""
    if name == "logistic":
        return Logistic(steepness)
    return _ACTIVATIONS[name]()
