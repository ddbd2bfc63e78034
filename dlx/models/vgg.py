"""VGG-style nets: blocks of 3x3 convolutions (stride 1, padding 1) and 2x2 max-pools, then a dense head.

A layout is a string of conv widths and 'M' for a pool: vgg11 and vgg16 as in Simonyan & Zisserman,
and the four-conv "vanilla" CIFAR-10 CNN. An adaptive average pool before the head lets one net take
32x32 (CIFAR) and 224x224 (ImageNet) images alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated

from pydantic import Field
from torch import nn

from dlx.data.base import DataSpec
from dlx.errors import DlxError
from dlx.models.init import InitName
from dlx.models.activations import ActivationName, activation
from dlx.models.checks import image_shape
from dlx.models.convnet import ConvNet
from dlx.models.mlp import Dropout, parse_sizes
from dlx.registry import models

VGG11 = "64-M-128-M-256-256-M-512-512-M-512-512-M"
VGG16 = "64-64-M-128-128-M-256-256-256-M-512-512-512-M-512-512-512-M"


@dataclass
class VGGConfig:
    blocks: str = VGG16  # conv widths and M (2x2 max-pool), e.g. "64-M-128-M"
    width_mult: Annotated[float, Field(gt=0.0, le=16.0)] = 1.0  # scales every conv width (0.25: a quarter as wide)
    hidden: str | int = "512-512"  # the dense layers before the output ("4096-4096" in the paper's ImageNet nets)
    dropout: Dropout = 0.5  # after each dense layer
    batch_norm: bool = False  # after each convolution (the vgg*_bn variants)
    avg_pool: Annotated[int, Field(ge=1)] | None = 1  # adaptive average pool to NxN before the head; null: flatten as is
    activation: ActivationName = "relu"
    init: InitName = "auto"


@dataclass
class VGG11Config(VGGConfig):
    blocks: str = VGG11


@dataclass
class VanillaConfig(VGGConfig):
    blocks: str = "32-32-M-64-64-M"  # four convolutions, as in the Keras CIFAR-10 example
    hidden: str | int = "512"
    avg_pool: Annotated[int, Field(ge=1)] | None = None


def parse_blocks(blocks: str, width_mult: float) -> list[int | str]:
    """'64-M-128' -> [64, 'M', 128], widths scaled by width_mult (at least 1)."""
    layout: list[int | str] = []
    for token in blocks.split("-"):
        token = token.strip()
        if token.upper() == "M":
            layout.append("M")
        elif token.isdigit() and int(token) > 0:
            layout.append(max(1, round(int(token) * width_mult)))
        else:
            raise DlxError(f"model.blocks: '{token}' in '{blocks}' is neither a conv width nor M (a 2x2 max-pool)")
    return layout


class VGG(ConvNet):
    def __init__(self, spec: DataSpec, config: VGGConfig, name: str):
        channels = image_shape(spec, name)[0]
        layout = parse_blocks(config.blocks, config.width_mult)
        features: list[nn.Module] = []
        for item in layout:
            if item == "M":
                features.append(nn.MaxPool2d(2))  # halves the image
                continue
            features.append(nn.Conv2d(channels, item, 3, padding=1))  # padding 1 keeps the size
            if config.batch_norm:
                features.append(nn.BatchNorm2d(item))
            features.append(activation(config.activation))
            channels = item
        if config.avg_pool is not None:
            features.append(nn.AdaptiveAvgPool2d(config.avg_pool))  # (B, C, H', W') -> (B, C, N, N) for any image size
        side = 2 ** layout.count("M")
        super().__init__(spec, name, features, parse_sizes(config.hidden, "model.hidden"), config.activation,
                         config.init, f"{side}x{side}", dropout=config.dropout)


for _name, _description, _config in [
    ("vgg11", "VGG-11 (configurable blocks, width_mult, batch_norm); 32x32 and up", VGG11Config),
    ("vgg16", "VGG-16 (configurable blocks, width_mult, batch_norm); 32x32 and up", VGGConfig),
    ("cifar10_vanilla_cnn", "the 'vanilla' CIFAR-10 CNN: four 3x3 convs (32-32-pool-64-64-pool), dense 512, dropout",
     VanillaConfig),
]:
    models.register(_name, _description, config=_config, inputs="image")(partial(VGG, name=_name))
