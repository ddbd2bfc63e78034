"""Variational autoencoders, dense and convolutional, for the `vae` objective.

The encoder gives the mean and log-variance of q(z|x); z is drawn with the reparameterisation trick
z = mean + exp(logvar / 2) * eps, eps ~ N(0, I), so the draw is differentiable in the encoder's outputs; the decoder
maps z back to a sample shaped like the input. forward returns all three, because the objective's loss (the ELBO)
needs the mean and log-variance besides the reconstruction. The decoder's output is linear: the data it reconstructs
is standardised, unbounded values (see dlx.objectives.vae on the Gaussian decoder).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn

from dlx.data.base import DataSpec
from dlx.models.checks import image_shape
from dlx.models.mlp import dense_stack, parse_sizes
from dlx.registry import models

Latent = Annotated[int, Field(ge=1, le=4096)]


class VariationalAutoencoder(nn.Module):
    """What every VAE shares: encoder -> to_moments gives (mean, logvar), the decoder maps a code to a sample."""

    latent: int
    encoder: nn.Module  # (B, *x) -> (B, h)
    to_moments: nn.Linear  # (B, h) -> (B, 2 * latent): mean and log-variance
    decoder: nn.Module  # (B, latent) -> (B, *x)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The mean and log-variance of q(z|x), (B, latent) each."""
        return self.to_moments(self.encoder(x)).chunk(2, dim=1)

    def sample_noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent, device=device, generator=generator)  # (n, latent): the prior N(0, I)

    def decode(self, z: Tensor) -> Tensor:
        """Samples shaped like the data from codes z (the protocol every generative model keeps with `sample_noise`)."""
        return self.decoder(z)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mean, logvar = self.encode(x)
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)  # (B, latent); decoder(mean) is the noiseless code
        return self.decoder(z), mean, logvar


@dataclass
class MLPVAEConfig:
    sizes: str | int = "128"  # hidden sizes of the encoder; the decoder mirrors them
    latent: Latent = 8  # width of z


@models.register("mlp_vae", "variational autoencoder of dense layers for the vae objective: (reconstruction, mean, "
                 "log-variance)", config=MLPVAEConfig, inputs="any", objective="vae")
class MLPVAE(VariationalAutoencoder):
    def __init__(self, spec: DataSpec, config: MLPVAEConfig):
        super().__init__()
        features, hidden = math.prod(spec.in_shape), parse_sizes(config.sizes)
        self.latent = config.latent
        self.encoder = nn.Sequential(nn.Flatten(), *dense_stack([features, *hidden], "relu", "auto"))  # (B, h)
        self.to_moments = nn.Linear(hidden[-1], 2 * config.latent)
        self.decoder = nn.Sequential(*dense_stack([config.latent, *hidden[::-1]], "relu", "auto"),
                                     nn.Linear(hidden[0], features), nn.Unflatten(1, spec.in_shape))  # (B, *x)


@dataclass
class ConvVAEConfig:
    channels: str | int = "32-64"  # one 3x3 stride-2 conv per entry, each halving the image (rounding up)
    hidden: Annotated[int, Field(ge=1, le=65536)] = 256  # the dense layer between the last conv and the code
    latent: Latent = 16


@models.register("conv_vae", "convolutional variational autoencoder for the vae objective: stride-2 convs down, "
                 "transposed convs up, sized to any image (8x8 digits, 28x28 MNIST, 32x32 CIFAR)",
                 config=ConvVAEConfig, inputs="image", objective="vae")
class ConvVAE(VariationalAutoencoder):
    def __init__(self, spec: DataSpec, config: ConvVAEConfig):
        super().__init__()
        channels, height, width = image_shape(spec, "conv_vae")
        widths = [channels, *parse_sizes(config.channels, "model.channels")]
        sides = [(height, width)]  # the image's side after each conv: ceil(side / 2), so any size works
        for _ in widths[1:]:
            sides.append(tuple((s + 1) // 2 for s in sides[-1]))
        features = widths[-1] * math.prod(sides[-1])
        self.latent = config.latent
        down: list[nn.Module] = []
        for c_in, c_out in zip(widths, widths[1:]):
            down += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU()]
        self.encoder = nn.Sequential(*down, nn.Flatten(), nn.Linear(features, config.hidden), nn.ReLU())  # (B, hidden)
        self.to_moments = nn.Linear(config.hidden, 2 * config.latent)
        up: list[nn.Module] = [nn.Linear(config.latent, config.hidden), nn.ReLU(), nn.Linear(config.hidden, features),
                               nn.ReLU(), nn.Unflatten(1, (widths[-1], *sides[-1]))]
        for i in range(len(widths) - 1, 0, -1):
            # kernel 3, stride 2, padding 1 makes 2 * side - 1; the output padding adds the row an even side needs
            (h, w), (target_h, target_w) = sides[i], sides[i - 1]
            up += [nn.ConvTranspose2d(widths[i], widths[i - 1], 3, stride=2, padding=1,
                                      output_padding=(target_h - (2 * h - 1), target_w - (2 * w - 1))), nn.ReLU()]
        self.decoder = nn.Sequential(*up[:-1])  # (B, latent) -> (B, C, H, W); the output is linear
