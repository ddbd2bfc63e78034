"""A variational autoencoder of dense layers, for the `vae` objective.

The encoder gives the mean and log-variance of q(z|x); z is drawn with the reparameterisation trick
z = mean + exp(logvar / 2) * eps, eps ~ N(0, I), so the draw is differentiable in the encoder's outputs; the decoder
maps z back to a sample shaped like the input. forward returns all three, because the objective's loss (the ELBO)
needs the mean and log-variance besides the reconstruction.
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


@dataclass
class MLPVAEConfig:
    sizes: str | int = "128"  # hidden sizes of the encoder; the decoder mirrors them
    latent: Annotated[int, Field(ge=1, le=4096)] = 8  # width of z


@models.register("mlp_vae", "variational autoencoder of dense layers for the vae objective: (reconstruction, mean, "
                 "log-variance)", config=MLPVAEConfig, inputs="any", objective="vae")
class MLPVAE(nn.Module):
    def __init__(self, spec: DataSpec, config: MLPVAEConfig):
        super().__init__()
        features, hidden = math.prod(spec.in_shape), parse_sizes(config.sizes)
        self.latent = config.latent
        self.encoder = nn.Sequential(nn.Flatten(), *dense_stack([features, *hidden], "relu", "auto"))  # (B, h)
        self.to_moments = nn.Linear(hidden[-1], 2 * config.latent)  # (B, 2 * latent): mean and log-variance
        self.decoder = nn.Sequential(*dense_stack([config.latent, *hidden[::-1]], "relu", "auto"),
                                     nn.Linear(hidden[0], features), nn.Unflatten(1, spec.in_shape))  # (B, *x)

    def sample_noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent, device=device, generator=generator)  # (n, latent): the prior N(0, I)

    def decode(self, z: Tensor) -> Tensor:
        """Samples shaped like the data from codes z (the protocol every generative model keeps with `sample_noise`)."""
        return self.decoder(z)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mean, logvar = self.to_moments(self.encoder(x)).chunk(2, dim=1)  # (B, latent) each
        z = mean + (0.5 * logvar).exp() * torch.randn_like(mean)  # (B, latent); decoder(mean) is the noiseless code
        return self.decoder(z), mean, logvar
