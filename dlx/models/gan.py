"""A generator and a discriminator of dense layers, for the `gan` objective on small data (tables, 8x8 digits).

The generator maps noise z ~ N(0, I) to a sample shaped like the data; the discriminator maps a sample to one logit,
"real" when positive. Each is a network of its own, trained by its own optimizer (optimizers.generator and
optimizers.discriminator in the config).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn

from dlx.data.base import DataSpec
from dlx.models.mlp import dense_stack, parse_sizes
from dlx.registry import models


class AdversarialPair(nn.Module):
    """What every GAN model shares: a `generator` drawing samples from noise z ~ N(0, I) of width `noise`, and a
    `discriminator` scoring samples with one logit; the generative protocol (sample_noise, decode) for the rest."""

    noise: int
    generator: nn.Module
    discriminator: nn.Module

    def sample_noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.noise, device=device, generator=generator)  # (n, z)

    def decode(self, z: Tensor) -> Tensor:
        """Samples shaped like the data from codes z (the protocol every generative model keeps with `sample_noise`)."""
        return self.generator(z)

    def forward(self, z: Tensor) -> Tensor:
        """Samples from noise: what a trained GAN is for."""
        return self.generator(z)


@dataclass
class MLPGANConfig:
    noise: Annotated[int, Field(ge=1, le=4096)] = 16  # width of z
    hidden: str | int = "128-128"  # hidden sizes of both networks (the discriminator's mirror the generator's)
    slope: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2  # leaky ReLU slope of the discriminator (DCGAN's)


@models.register("mlp_gan", "generator and discriminator MLPs for the gan objective; samples shaped like the data",
                 config=MLPGANConfig, inputs="any", objective="gan")
class MLPGAN(AdversarialPair):
    def __init__(self, spec: DataSpec, config: MLPGANConfig):
        super().__init__()
        self.noise, self.sample_shape = config.noise, spec.in_shape
        features, hidden = math.prod(spec.in_shape), parse_sizes(config.hidden, "model.hidden")
        self.generator = nn.Sequential(*dense_stack([config.noise, *hidden], "relu", "auto"),
                                       nn.Linear(hidden[-1], features), nn.Unflatten(1, spec.in_shape))  # (B, z) -> (B, *x)
        discriminator = dense_stack([features, *hidden[::-1]], "leaky_relu", "auto")
        for layer in discriminator:
            if isinstance(layer, nn.LeakyReLU):
                layer.negative_slope = config.slope
        self.discriminator = nn.Sequential(nn.Flatten(), *discriminator, nn.Linear(hidden[0], 1))  # (B, *x) -> (B, 1)
