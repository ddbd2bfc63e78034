"""1-D convolution over sequences (B, T, F): stacked Conv1d layers slide kernels along time, a global max (an OR over
positions: "the pattern occurs somewhere") or mean over time, then a linear layer to the classes.

The course's example is one convolutional neuron with a kernel of length 4 that detects 1011 anywhere in a bit
stream, sharing its weights over positions instead of one fully connected neuron per position.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from dlx.data.base import DataSpec
from dlx.errors import DlxError
from dlx.models.activations import ActivationName, activation
from dlx.models.checks import classifier_outputs, sequence_shape
from dlx.models.init import InitName, initialize
from dlx.models.mlp import parse_sizes
from dlx.registry import models

# how many zeros each side of the sequence gets, for a kernel of length k: none (valid), enough to keep the
# length (same), or enough that every position meets every kernel weight (full, the length grows by k-1)
PADDING = {"valid": lambda k: 0, "same": lambda k: "same", "full": lambda k: k - 1}


@dataclass
class Conv1DConfig:
    channels: str | int = "16"  # filters of each conv layer, "8-16"
    kernel: Annotated[int, Field(ge=1, le=1024)] = 3  # kernel length along time
    activation: ActivationName = "relu"  # after every conv layer
    padding: Literal["valid", "same", "full"] = "valid"
    pool: Literal["max", "mean"] = "max"  # over time: max is an OR over positions, mean counts them
    init: InitName = "auto"  # `dlx list initializers`; auto pairs it with the activation


def output_length(length: int, kernel: int, padding: str) -> int:
    """The sequence length after one stride-1 convolution."""
    return {"valid": length - kernel + 1, "same": length, "full": length + kernel - 1}[padding]


@models.register("conv1d", "1-D CNN on sequences (T, F): stacked Conv1d layers, a global max or mean over time, "
                           "a linear layer", config=Conv1DConfig, inputs="sequence")
class Conv1D(nn.Module):
    def __init__(self, spec: DataSpec, config: Conv1DConfig):
        super().__init__()
        length, features = sequence_shape(spec, "conv1d")
        widths = [features, *parse_sizes(config.channels, "model.channels")]
        if len(widths) < 2:
            raise DlxError("model.channels: give at least one conv layer, e.g. '8-16'")
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(widths, widths[1:]):
            layers += [nn.Conv1d(fan_in, fan_out, config.kernel, padding=PADDING[config.padding](config.kernel)),
                       activation(config.activation)]
            length = output_length(length, config.kernel, config.padding)
        if length < 1:
            raise DlxError(f"model.kernel: {len(widths) - 1} valid convolutions with kernels of {config.kernel} do "
                           f"not fit sequences of {spec.in_shape[0]} steps; use padding: same or a shorter kernel")
        self.features = nn.Sequential(*layers)
        self.pool = config.pool
        self.head = nn.Linear(widths[-1], classifier_outputs(spec, "conv1d"))
        initialize(self.features, config.init, config.activation)
        initialize(self.head, config.init, "identity")

    @property
    def kernels(self) -> torch.Tensor:
        """The first layer's filters, (channels, F, kernel): what each one looks for in the input."""
        return self.features[0].weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x.transpose(1, 2))  # (B, T, F) -> (B, F, T), as Conv1d wants -> (B, C, T')
        pooled = h.amax(dim=2) if self.pool == "max" else h.mean(dim=2)  # (B, C, T') -> (B, C)
        return self.head(pooled)  # (B, C) -> (B, outputs)
