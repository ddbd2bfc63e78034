"""Variational autoencoders (Kingma and Welling 2014): the negative ELBO, reconstruction plus beta times KL.

The model returns (reconstruction, mean, logvar) of q(z|x) = N(mean, exp(logvar)); the loss needs the last two,
which a loss(model(x), y) loop cannot give it. The KL divergence of q(z|x) from the prior N(0, I) is
-1/2 sum(1 + logvar - mean^2 - exp(logvar)) over the latent dimensions. Both terms are summed per example and averaged
over the batch, so beta = 1 is the true ELBO and beta > 1 the beta-VAE. The data's labels play no part: the target is
the input itself.

The decoder is Gaussian with unit variance, p(x|z) = N(decoder(z), I), so the reconstruction term is half the squared
error summed over the input's values. A Bernoulli decoder (binary cross-entropy) would need pixels in [0, 1], but dlx
hands every model standardised inputs (zero mean and unit variance per channel or feature, any sign), and the same
objective serves tables and colour images; in those units a unit variance is the data's own spread. beta < 1 weighs
the reconstruction more: the same optimum as a Gaussian decoder of variance beta, i.e. sharper samples.

KL warm-up (Bowman et al. 2016): beta ramps linearly from 0 over the first `kl_warmup` optimizer steps (or the
fraction `kl_warmup_fraction` of the run), so the decoder learns to use the code before the KL term pulls the posterior
onto the prior. The ramp follows the loop's step count (`advance`), so a resumed run takes the same values.
Validation weighs the KL by the full beta throughout: val/loss stays the one objective, comparable across epochs.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

from pydantic import Field
from torch import Tensor, nn

from dlx.data.base import Splits
from dlx.errors import DlxError
from dlx.models.modes import evaluating
from dlx.objectives.base import Objective
from dlx.registry import objectives

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def elbo_terms(x: Tensor, reconstruction: Tensor, mean: Tensor, logvar: Tensor) -> tuple[Tensor, Tensor]:
    """(reconstruction error, KL) per example, averaged over the batch."""
    squared = (reconstruction - x).pow(2).flatten(1).sum(1)  # (B,)
    kl = -0.5 * (1 + logvar - mean.pow(2) - logvar.exp()).sum(1)  # (B,)
    return 0.5 * squared.mean(), kl.mean()


@objectives.register("vae", "variational autoencoder: reconstruction + beta * KL (the negative ELBO), optional KL "
                     "warm-up; the model returns (reconstruction, mean, logvar)")
class VAE(Objective):
    measures_metrics = False
    terms_logged = ("loss", "reconstruction", "kl")
    terms_trained = ("reconstruction", "kl")
    uses_loss = False

    def __init__(self, model: nn.Module, spec, loss_fn: nn.Module, *, beta: Annotated[float, Field(ge=0.0)] = 1.0,
                 kl_warmup: Annotated[int, Field(ge=0)] = 0,
                 kl_warmup_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0):
        super().__init__(model, spec, loss_fn)
        if kl_warmup and kl_warmup_fraction:
            raise DlxError(f"objective.kl_warmup ({kl_warmup} steps) and objective.kl_warmup_fraction "
                           f"({kl_warmup_fraction}) both set the KL warm-up; give one of them (the other 0)")
        self.beta, self.kl_warmup, self.kl_warmup_fraction = beta, kl_warmup, kl_warmup_fraction
        self.weight = beta  # the KL's weight at the current step

    def check(self, data: Splits, model_name: str) -> None:
        x = data.first("train", 2)[0]
        with evaluating(self.model):
            out = self.model(x)
        if not (isinstance(out, tuple) and len(out) == 3 and out[0].shape == x.shape):
            raise DlxError(f"objective 'vae' needs a model that returns (reconstruction, mean, logvar) with the "
                           f"reconstruction shaped like its input; '{model_name}' does not (try model.name=mlp_vae)")

    def advance(self, step: int, total: int) -> None:
        ramp = self.kl_warmup or round(self.kl_warmup_fraction * total)
        self.weight = self.beta * min(1.0, step / ramp) if ramp else self.beta

    def loss(self, group: str, nets: Mapping[str, nn.Module], x: Tensor, y: Tensor) -> Tensor:
        return self.loss_terms(group, nets, x, y)["loss"]

    def loss_terms(self, group: str, nets: Mapping[str, nn.Module], x: Tensor, y: Tensor) -> dict[str, Tensor]:
        reconstruction, kl = elbo_terms(x, *nets["model"](x))
        return {"loss": reconstruction + self.weight * kl, "reconstruction": reconstruction.detach(), "kl": kl.detach()}

    def terms(self, model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        reconstruction, kl = elbo_terms(x, *model(x))
        return {"loss": reconstruction + self.beta * kl, "reconstruction": reconstruction, "kl": kl}

    def pictures(self, model: nn.Module, data: Splits, split: str, title: str) -> dict[str, Figure]:
        from dlx.objectives import vae_pictures  # matplotlib only once a figure is drawn

        return vae_pictures.figures(model, data, split, title)
