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
from dlx.models.init import InitName, initialize
from dlx.models.activations import ActivationName, activation
from dlx.models.checks import classifier_outputs
from dlx.registry import models

Steepness = Annotated[float, Field(gt=0.0)]
Dropout = Annotated[float, Field(ge=0.0, lt=1.0)]


@dataclass
class MLPConfig:
    sizes: str | int = "64"  # hidden layer sizes, "4-3"; "" for none (a linear model)
    layers: str | None = None  # or the course's whole net, "2-4-3-2": inputs-hidden-...-outputs, checked against the data
    activation: ActivationName = "relu"
    steepness: Steepness = 1.0  # lambda of the logistic activation 1/(1+exp(-lambda x)); the others ignore it
    dropout: Dropout = 0.0  # after each hidden layer; the course's keep probability 1/2 is dropout 0.5
    batch_norm: bool = False
    init: InitName = "auto"  # `dlx list initializers`; auto pairs it with the activation (He for ReLU, ...)


def parse_sizes(sizes: str | int, key: str = "model.sizes") -> list[int]:
    """'64-32' -> [64, 32]."""
    try:
        parsed = [int(s) for s in str(sizes).split("-") if s.strip()]
    except ValueError:
        raise DlxError(f"{key}: '{sizes}' is not a list of layer sizes like '64-32'") from None
    if any(s <= 0 for s in parsed):
        raise DlxError(f"{key}: layer sizes must be positive, got '{sizes}'")
    return parsed


def dense_stack(widths: list[int], act: ActivationName, init: InitName, *, steepness: float = 1.0,
                dropout: float = 0.0, batch_norm: bool = False) -> list[nn.Module]:
    """Linear layers from widths[0] to widths[-1], each followed by [batch norm], the activation and [dropout],
    with weights drawn by `init` for that activation."""
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths, widths[1:]):
        linear = nn.Linear(fan_in, fan_out)
        initialize(linear, init, act)
        layers.append(linear)
        if batch_norm:
            layers.append(nn.BatchNorm1d(fan_out))
        layers.append(activation(act, steepness))
        if dropout:
            layers.append(nn.Dropout(dropout))
    return layers


def hidden_sizes(config: MLPConfig, spec: DataSpec) -> list[int]:
    """The hidden sizes: model.sizes, or the middle of model.layers once its ends match the data."""
    if config.layers is None:
        return parse_sizes(config.sizes)
    layers = parse_sizes(config.layers, "model.layers")
    ends = (math.prod(spec.in_shape), spec.num_outputs)
    if len(layers) < 2 or (layers[0], layers[-1]) != ends:
        raise DlxError(f"model.layers: '{config.layers}' must start with the data's {ends[0]} inputs and end with its "
                       f"{ends[1]} outputs, e.g. '{ends[0]}-8-{ends[1]}'")
    return layers[1:-1]


@models.register("mlp", "multilayer perceptron, hidden sizes '64-32' or layers '2-4-3-2', any course activation, "
                        "dropout, batch norm, initialiser", config=MLPConfig, inputs="any")
class MLP(nn.Module):
    def __init__(self, spec: DataSpec, config: MLPConfig):
        super().__init__()
        widths = [math.prod(spec.in_shape), *hidden_sizes(config, spec)]
        output = nn.Linear(widths[-1], classifier_outputs(spec, "mlp"))
        initialize(output, config.init, "identity")  # logits: softmax (in the loss) or identity follows
        hidden = dense_stack(widths, config.activation, config.init, steepness=config.steepness,
                             dropout=config.dropout, batch_norm=config.batch_norm)
        self.net = nn.Sequential(nn.Flatten(), *hidden, output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (B, *in_shape) -> (B, num_outputs)
