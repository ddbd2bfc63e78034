"""Residual networks of basic blocks, y = ReLU(F(x) + x) (He et al. 2016).

resnet20/32/56 are the paper's CIFAR-10 nets: a 3x3 stem, three stages of n blocks (16, 32, 64
channels), depth 6n + 2. resnet18 is the ImageNet layout (four stages of two blocks, 64 to 512
channels); on small images it takes the CIFAR stem, as is usual, since a 7x7 stride-2 conv and a
max-pool would leave a 32x32 image 8x8 before the first block.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from dlx.data.base import DataSpec
from dlx.models.init import InitName, initialize
from dlx.models.checks import classifier_outputs, image_shape
from dlx.models.mlp import parse_sizes
from dlx.registry import models


@dataclass
class ResNetConfig:
    blocks: str = "3-3-3"  # basic blocks per stage; each stage after the first halves the image and doubles the width
    width: Annotated[int, Field(ge=1, le=4096)] = 16  # channels of the first stage
    stem: Literal["auto", "cifar", "imagenet"] = "cifar"  # auto: imagenet (7x7/2 conv + max-pool) from 64x64 up
    init: InitName = "auto"


@dataclass
class ResNet32Config(ResNetConfig):
    blocks: str = "5-5-5"


@dataclass
class ResNet56Config(ResNetConfig):
    blocks: str = "9-9-9"


@dataclass
class ResNet18Config(ResNetConfig):
    blocks: str = "2-2-2-2"
    width: Annotated[int, Field(ge=1, le=4096)] = 64
    stem: Literal["auto", "cifar", "imagenet"] = "auto"


class BasicBlock(nn.Module):
    """Two 3x3 conv + batch-norm layers F, and the shortcut: the identity, or a 1x1 projection when the shape changes."""

    def __init__(self, channels: int, out: int, stride: int):
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(channels, out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(),
            nn.Conv2d(out, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
        )
        self.shortcut = nn.Identity() if stride == 1 and channels == out else nn.Sequential(
            nn.Conv2d(channels, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))  # F(x) + x


class ResNet(nn.Module):
    def __init__(self, spec: DataSpec, config: ResNetConfig, name: str):
        super().__init__()
        channels, height, width = image_shape(spec, name)
        stem = config.stem if config.stem != "auto" else ("imagenet" if min(height, width) >= 64 else "cifar")
        w = config.width
        if stem == "imagenet":
            layers: list[nn.Module] = [nn.Conv2d(channels, w, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(w),
                                       nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1)]
        else:
            layers = [nn.Conv2d(channels, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        for stage, n in enumerate(parse_sizes(config.blocks, "model.blocks")):
            out = config.width * 2**stage
            for i in range(n):
                layers.append(BasicBlock(w, out, stride=2 if stage > 0 and i == 0 else 1))
                w = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, C, H, W) -> (B, w)
        self.fc = nn.Linear(w, classifier_outputs(spec, name))
        initialize(self.features, config.init, "relu")
        initialize(self.fc, config.init, "identity")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))  # (B, C, H, W) -> (B, classes)


for _name, _description, _config in [
    ("resnet20", "CIFAR ResNet-20: 3 stages of 3 basic blocks, 16-32-64 channels", ResNetConfig),
    ("resnet32", "CIFAR ResNet-32: 3 stages of 5 basic blocks, 16-32-64 channels", ResNet32Config),
    ("resnet56", "CIFAR ResNet-56: 3 stages of 9 basic blocks, 16-32-64 channels", ResNet56Config),
    ("resnet18", "ResNet-18: 4 stages of 2 basic blocks, 64-512 channels; CIFAR stem below 64x64", ResNet18Config),
]:
    models.register(_name, _description, config=_config, inputs="image")(partial(ResNet, name=_name))
