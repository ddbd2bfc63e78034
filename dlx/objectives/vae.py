"""Variational autoencoders (Kingma and Welling 2014): the negative ELBO, reconstruction plus beta times KL.

The model returns (reconstruction, mean, logvar) of q(z|x) = N(mean, exp(logvar)); the loss needs the last two,
which a loss(model(x), y) loop cannot give it. With a Gaussian decoder of unit variance the reconstruction term is
half the squared error summed over the input's values; the KL divergence of q(z|x) from the prior N(0, I) is
-1/2 sum(1 + logvar - mean^2 - exp(logvar)) over the latent dimensions. Both are summed per example and averaged over
the batch, so beta = 1 is the true ELBO and beta > 1 the beta-VAE. The data's labels play no part: the target is the
input itself.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import Field
from torch import Tensor, nn

from dlx.data.base import Splits
from dlx.errors import DlxError
from dlx.models.modes import evaluating
from dlx.objectives.base import Objective
from dlx.registry import objectives


def elbo_terms(x: Tensor, reconstruction: Tensor, mean: Tensor, logvar: Tensor) -> tuple[Tensor, Tensor]:
    """(reconstruction error, KL) per example, averaged over the batch."""
    squared = (reconstruction - x).pow(2).flatten(1).sum(1)  # (B,)
    kl = -0.5 * (1 + logvar - mean.pow(2) - logvar.exp()).sum(1)  # (B,)
    return 0.5 * squared.mean(), kl.mean()


@objectives.register("vae", "variational autoencoder: reconstruction + beta * KL (the negative ELBO); the model "
                     "returns (reconstruction, mean, logvar)")
class VAE(Objective):
    measures_metrics = False
    terms_logged = ("loss", "reconstruction", "kl")
    uses_loss = False

    def __init__(self, model: nn.Module, spec, loss_fn: nn.Module, *, beta: Annotated[float, Field(ge=0.0)] = 1.0):
        super().__init__(model, spec, loss_fn)
        self.beta = beta

    def check(self, data: Splits, model_name: str) -> None:
        x = data.first("train", 2)[0]
        with evaluating(self.model):
            out = self.model(x)
        if not (isinstance(out, tuple) and len(out) == 3 and out[0].shape == x.shape):
            raise DlxError(f"objective 'vae' needs a model that returns (reconstruction, mean, logvar) with the "
                           f"reconstruction shaped like its input; '{model_name}' does not (try model.name=mlp_vae)")

    def loss(self, group: str, nets: Mapping[str, nn.Module], x: Tensor, y: Tensor) -> Tensor:
        reconstruction, kl = elbo_terms(x, *nets["model"](x))
        return reconstruction + self.beta * kl

    def terms(self, model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        reconstruction, kl = elbo_terms(x, *model(x))
        return {"loss": reconstruction + self.beta * kl, "reconstruction": reconstruction, "kl": kl}
