"""Multilayer perceptron: flatten the input, then dense layers of the given sizes."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from dlx.data.base import DataSpec
from dlx.errors import DlxError
from dlx.models.activations import ActivationName, activation
from dlx.registry import models


@dataclass
class MLPConfig:
    sizes: str | int = "64"  # hidden layer sizes, "64-32"; "" for none (a linear model). Inputs and outputs come from the data
    activation: ActivationName = "relu"
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    batch_norm: bool = False


def parse_sizes(sizes: str | int) -> list[int]:
    """'64-32' -> [64, 32]."""
    try:
        parsed = [int(s) for s in str(sizes).split("-") if s.strip()]
    except ValueError:
        raise DlxError(f"model.sizes: '{sizes}' is not a list of layer sizes like '64-32'") from None
    if any(s <= 0 for s in parsed):
        raise DlxError(f"model.sizes: layer sizes must be positive, got '{sizes}'")
    return parsed


@models.register("mlp", "multilayer perceptron, hidden sizes like '64-32', any course activation", config=MLPConfig)
class MLP(nn.Module):
    def __init__(self, spec: DataSpec, config: MLPConfig):
        super().__init__()
        widths = [math.prod(spec.in_shape), *parse_sizes(config.sizes)]
        layers: list[nn.Module] = [nn.Flatten()]
        for fan_in, fan_out in zip(widths, widths[1:]):
            layers.append(nn.Linear(fan_in, fan_out))
            if config.batch_norm:
                layers.append(nn.BatchNorm1d(fan_out))
            layers.append(activation(config.activation))
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
        layers.append(nn.Linear(widths[-1], spec.num_outputs))  # logits: the loss applies softmax
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, *in_shape) -> (B, num_outputs)
