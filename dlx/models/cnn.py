"""A small convolutional network for small images (digits' 8x8 up to CIFAR's 32x32)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from dlx.data.base import DataSpec
from dlx.errors import DlxError
from dlx.models.init import InitName, initialize
from dlx.models.activations import ActivationName, activation
from dlx.registry import models


@dataclass
class CNNConfig:
    width: Annotated[int, Field(ge=1, le=4096)] = 32  # channels of the first block; each further block doubles them
    depth: Annotated[int, Field(ge=1, le=8)] = 2  # conv blocks, each halving the image
    hidden: Annotated[int, Field(ge=1)] = 128  # the dense layer before the output
    activation: ActivationName = "relu"
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    init: InitName = "auto"  # `dlx list initializers`; auto pairs it with the activation


@models.register("cnn", "small CNN: blocks of 3x3 conv + batch norm + 2x2 max-pool, then a dense head",
                 config=CNNConfig, inputs="image")
class CNN(nn.Module):
    def __init__(self, spec: DataSpec, config: CNNConfig):
        super().__init__()
        if not spec.is_image:
            raise DlxError(f"model 'cnn' needs images (C, H, W), but the data has samples of shape {spec.in_shape}")
        channels, height, width = spec.in_shape
        if min(height, width) < 2**config.depth:
            raise DlxError(f"model.depth: {config.depth} pooling steps do not fit a {height}x{width} image")
        blocks: list[nn.Module] = []
        for i in range(config.depth):
            out = config.width * 2**i
            # padding 1 keeps the size, so only the pooling halves it
            blocks += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), activation(config.activation),
                       nn.MaxPool2d(2)]
            channels = out
        self.features = nn.Sequential(*blocks)
        flat = channels * (height >> config.depth) * (width >> config.depth)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, config.hidden),
            activation(config.activation),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, spec.num_outputs),
        )
        initialize(self.features, config.init, config.activation)
        initialize(self.head[:-1], config.init, config.activation)
        initialize(self.head[-1], config.init, "identity")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, C, H, W) -> (B, width*2^(depth-1), H/2^depth, W/2^depth) -> (B, classes)
