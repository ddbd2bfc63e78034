"""The LeNet family: LeNet-5 and the course notes' two MNIST CNNs (valid 5x5 convolutions, 2x2 pooling)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field
from torch import nn

from dlx.data.base import DataSpec
from dlx.models.init import InitName
from dlx.models.activations import ActivationName, activation
from dlx.models.checks import image_shape
from dlx.models.convnet import ConvNet
from dlx.models.mlp import Dropout
from dlx.registry import models

Width = Annotated[int, Field(ge=1, le=65536)]


@dataclass
class LeNet5Config:
    activation: ActivationName = "tanh"
    init: InitName = "auto"


@models.register("lenet5", "LeNet-5: conv 6@5x5, avg-pool, conv 16@5x5, avg-pool, conv 120@5x5, dense 84; "
                           "28x28 and up", config=LeNet5Config, inputs="image")
class LeNet5(ConvNet):
    def __init__(self, spec: DataSpec, config: LeNet5Config):
        act = config.activation
        channels = image_shape(spec, "lenet5")[0]
        features = [
            nn.Conv2d(channels, 6, 5, padding=2), activation(act), nn.AvgPool2d(2),  # padding 2: 28x28 MNIST acts as 32x32
            nn.Conv2d(6, 16, 5), activation(act), nn.AvgPool2d(2),  # (B, 16, 5, 5) from 28x28
            nn.Conv2d(16, 120, 5), activation(act),  # (B, 120, 1, 1) from 28x28
        ]
        super().__init__(spec, "lenet5", features, [84], act, config.init, "28x28")


@dataclass
class LeNet1Config:
    activation: ActivationName = "tanh"
    init: InitName = "auto"


@models.register("lenet1", "LeNet-1 (1989) as in the notes: 16x16 -> 12 maps 8x8 -> 12 maps 4x4 -> 30 hidden -> outputs",
                 config=LeNet1Config, inputs="image")
class LeNet1(ConvNet):
    """16x16 (256 units) -> H1: 12 maps of 8x8 (768) -> H2: 12 maps of 4x4 (192) -> H3: 30 -> 10. Each map is a 5x5
    convolution with stride 2 (padding 2 keeps the halving exact). LeCun et al. connect each H2 map to 8 of H1's 12
    maps; here every H2 map sees all 12, as convolution layers do today."""

    def __init__(self, spec: DataSpec, config: LeNet1Config):
        act = config.activation
        channels = image_shape(spec, "lenet1")[0]
        features = [
            nn.Conv2d(channels, 12, 5, stride=2, padding=2), activation(act),  # (B, 12, 8, 8) from 16x16
            nn.Conv2d(12, 12, 5, stride=2, padding=2), activation(act),  # (B, 12, 4, 4)
        ]
        super().__init__(spec, "lenet1", features, [30], act, config.init, "16x16")


@dataclass
class MNISTSmallConfig:
    init: InitName = "auto"


@models.register("mnist_small_cnn", "the notes' small MNIST CNN: conv 6@5x5, conv 12@5x5, pool, conv 12@5x5, "
                                    "pool, dense 256 (ReLU)", config=MNISTSmallConfig, inputs="image")
class MNISTSmallCNN(ConvNet):
    """Exactly as the notes give it: 28x28x1 -> 24x24x6 -> 20x20x12 -> 10x10x12 -> 6x6x12 -> 3x3x12 = 108 -> 256 -> 10."""

    def __init__(self, spec: DataSpec, config: MNISTSmallConfig):
        channels = image_shape(spec, "mnist_small_cnn")[0]
        features = [
            nn.Conv2d(channels, 6, 5), nn.ReLU(),  # valid: (B, 6, 24, 24)
            nn.Conv2d(6, 12, 5), nn.ReLU(), nn.MaxPool2d(2),  # (B, 12, 20, 20) -> (B, 12, 10, 10)
            nn.Conv2d(12, 12, 5), nn.ReLU(), nn.MaxPool2d(2),  # (B, 12, 6, 6) -> (B, 12, 3, 3)
        ]
        super().__init__(spec, "mnist_small_cnn", features, [256], "relu", config.init, "20x20")


@dataclass
class MNISTStrongConfig:
    hidden: Width = 1000  # width of each of the two dense layers
    dropout: Dropout = 0.5  # on the dense layers; the notes keep each unit with probability 1/2
    init: InitName = "auto"


@models.register("mnist_strong_cnn", "the notes' stronger MNIST CNN: conv-pool 20@5x5, conv-pool 40@5x5, "
                                     "dense 1000, dense 1000, ReLU, dropout 1/2", config=MNISTStrongConfig,
                 inputs="image")
class MNISTStrongCNN(ConvNet):
    """28x28 -> 20@24x24 -> 20@12x12 -> 40@8x8 -> 40@4x4 = 640 -> 1000 -> 1000 -> 10 (the notes also use L2,
    SGD with batch 10 and lr 0.03, one-pixel shifts and a committee of 5: see experiments/mnist_strong_cnn.yaml)."""

    def __init__(self, spec: DataSpec, config: MNISTStrongConfig):
        channels = image_shape(spec, "mnist_strong_cnn")[0]
        features = [
            nn.Conv2d(channels, 20, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(20, 40, 5), nn.ReLU(), nn.MaxPool2d(2),
        ]
        super().__init__(spec, "mnist_strong_cnn", features, [config.hidden, config.hidden], "relu", config.init,
                         "16x16", dropout=config.dropout)
