"""Autoencoders, dense and convolutional: encode the input to a code, decode it back (data.reconstruct: true).

`noise` makes a denoising autoencoder: while training, Gaussian noise is added to the input and the
clean input stays the target. `sparsity` is the weight lambda of an L1 penalty on the code,
lambda * mean over the batch of sum |code|. It enters training through its gradient, added to the
code's gradient by a hook, so it works with any loss and needs no coupling between model and loss;
the losses the run reports stay the pure reconstruction error, which is what runs should compare.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from dlx.data.base import RECONSTRUCTION, DataSpec
from dlx.errors import DlxError
from dlx.models.init import InitName, initialize
from dlx.models.activations import ActivationName, activation
from dlx.models.checks import image_shape
from dlx.models.mlp import dense_stack, parse_sizes
from dlx.registry import models

NonNegative = Annotated[float, Field(ge=0.0)]


class Autoencoder(nn.Module):
    """decoder(encoder(x + noise)), with the L1 code penalty's gradient added while training."""

    def __init__(self, spec: DataSpec, name: str, noise: float, sparsity: float):
        super().__init__()
        if spec.task != RECONSTRUCTION:
            raise DlxError(f"model '{name}' reconstructs its input, but this data is set up for {spec.task}; "
                           f"set data.reconstruct: true and a regression loss such as mse")
        self.noise, self.sparsity = noise, sparsity

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.noise:
            x = x + self.noise * torch.randn_like(x)  # denoising: the target stays the clean input
        code = self.encoder(x)
        if self.training and self.sparsity and code.requires_grad:
            # d/dcode of lambda * mean_b sum |code| is lambda * sign(code) / B
            push = self.sparsity * code.detach().sign() / len(code)
            code.register_hook(lambda grad: grad + push)
        return self.decoder(code)  # (B, *in_shape)


@dataclass
class AutoencoderConfig:
    sizes: str | int = "64"  # encoder hidden sizes, e.g. "128-64"; the decoder mirrors them
    code: Annotated[int, Field(ge=1)] = 16  # width of the code (the bottleneck)
    activation: ActivationName = "relu"  # on every hidden layer and the code; the output is linear
    noise: NonNegative = 0.0  # standard deviation of the training input noise (denoising)
    sparsity: NonNegative = 0.0  # lambda of the L1 penalty on the code
    init: InitName = "auto"


@models.register("autoencoder", "dense autoencoder: sizes and code width, denoising noise, L1 sparsity on the code",
                 config=AutoencoderConfig, inputs="any", task=RECONSTRUCTION)
class DenseAutoencoder(Autoencoder):
    def __init__(self, spec: DataSpec, config: AutoencoderConfig):
        super().__init__(spec, "autoencoder", config.noise, config.sparsity)
        features = math.prod(spec.in_shape)
        widths = [features, *parse_sizes(config.sizes), config.code]
        self.encoder = nn.Sequential(nn.Flatten(), *dense_stack(widths, config.activation, config.init))  # (B, code)
        output = nn.Linear(widths[1], features)
        initialize(output, config.init, "identity")
        self.decoder = nn.Sequential(*dense_stack(widths[:0:-1], config.activation, config.init), output,
                                     nn.Unflatten(1, spec.in_shape))  # (B, code) -> (B, *in_shape)


@dataclass
class ConvAutoencoderConfig:
    channels: str | int = "16-32"  # one 3x3 stride-2 conv per entry, each halving the image; the decoder mirrors them
    activation: ActivationName = "relu"
    noise: NonNegative = 0.0
    sparsity: NonNegative = 0.0
    init: InitName = "auto"


@models.register("conv_autoencoder", "convolutional autoencoder: stride-2 convs down, transposed convs up; "
                                     "denoising, L1 sparsity", config=ConvAutoencoderConfig, inputs="image",
                 task=RECONSTRUCTION)
class ConvAutoencoder(Autoencoder):
    def __init__(self, spec: DataSpec, config: ConvAutoencoderConfig):
        super().__init__(spec, "conv_autoencoder", config.noise, config.sparsity)
        channels, height, width = image_shape(spec, "conv_autoencoder")
        widths = [channels, *parse_sizes(config.channels, "model.channels")]
        scale = 2 ** (len(widths) - 1)
        if height % scale or width % scale:
            raise DlxError(f"model.channels: {len(widths) - 1} halvings need an image side divisible by {scale}, "
                           f"but the images are {height}x{width}; use fewer channel entries")
        down: list[nn.Module] = []
        for c_in, c_out in zip(widths, widths[1:]):
            down += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), activation(config.activation)]
        up: list[nn.Module] = []
        for c_in, c_out in zip(widths[:0:-1], widths[-2::-1]):
            # kernel 3, stride 2, padding 1, output padding 1 exactly doubles the side
            up += [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1),
                   activation(config.activation)]
        self.encoder = nn.Sequential(*down)  # (B, C, H, W) -> (B, channels[-1], H/scale, W/scale)
        self.decoder = nn.Sequential(*up[:-1])  # the output is linear: standardised pixels are unbounded
        initialize(self.encoder, config.init, config.activation)
        initialize(self.decoder, config.init, config.activation)
        initialize(self.decoder[-1], config.init, "identity")
