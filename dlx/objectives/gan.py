"""Generative adversarial networks (Goodfellow et al. 2014) with the non-saturating generator loss.

Two groups, stepped alternately on every batch: the discriminator D learns to tell real samples (label 1) from the
generator's (label 0); then the generator G, against the discriminator as it now is, learns to make D say "real":
it minimises -log D(G(z)) rather than log(1 - D(G(z))), whose gradient vanishes while D easily rejects G's samples.
The labels y of the data play no part.

`label_smoothing` is one-sided label smoothing (Salimans et al. 2016): the discriminator's target for real samples
is 1 - label_smoothing (0.1 makes it 0.9), so it cannot grow arbitrarily sure of them and its gradient keeps
teaching the generator; fake samples keep their 0, and the generator's own target stays 1.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from dlx.data.base import Splits
from dlx.errors import DlxError
from dlx.objectives.base import Objective, submodule
from dlx.registry import objectives

EXTREMES_BATCH = 4096  # examples made floats at once while the training data's range is found


@objectives.register("gan", "generative adversarial network: discriminator and generator alternate, non-saturating "
                     "generator loss; optimizers.generator and optimizers.discriminator")
class GAN(Objective):
    groups = ("discriminator", "generator")
    measures_metrics = False
    terms_logged = ("loss", "discriminator_loss", "generator_loss")
    uses_loss = False

    def __init__(self, model: nn.Module, spec, loss_fn: nn.Module, *,
                 label_smoothing: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.0):
        super().__init__(model, spec, loss_fn)
        self.real_label = 1.0 - label_smoothing

    def network(self, group: str) -> nn.Module:
        return submodule(self.model, group, "gan")

    def check(self, data: Splits, model_name: str) -> None:
        for group in self.groups:
            self.network(group)
        if not callable(getattr(self.model, "sample_noise", None)):
            raise DlxError(f"objective 'gan' draws the generator's noise with the model's sample_noise(n, device); "
                           f"'{model_name}' has none (try model.name=mlp_gan)")
        low, high = getattr(self.model, "output_range", (-math.inf, math.inf))
        least, most = math.inf, -math.inf
        for x, _ in data.batches("train", EXTREMES_BATCH):  # a batch at a time: no float copy of the whole split
            least, most = min(least, x.min().item()), max(most, x.max().item())
        if least < low or most > high:  # the generator could never draw the real samples: D wins at once
            standardised = " (standardised: data.standardize is true)" if data.standardizer is not None else ""
            raise DlxError(f"model.output: the generator draws values in [{low:g}, {high:g}], but the training data "
                           f"spans [{least:.3g}, {most:.3g}]{standardised}; set data.standardize=false for pixels in "
                           f"[0, 1], or model.output=linear")

    def graph_input(self, x: Tensor) -> Tensor:
        return self.model.sample_noise(len(x), x.device)

    def loss(self, group: str, nets: Mapping[str, nn.Module], x: Tensor, y: Tensor) -> Tensor:
        fake = nets["generator"](self.model.sample_noise(len(x), x.device))  # (B, *x)
        if group == "discriminator":
            return self._discriminator_loss(nets["discriminator"], x, fake.detach())
        return _bce(nets["discriminator"](fake), 1.0)

    def _discriminator_loss(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return (_bce(discriminator(real), self.real_label) + _bce(discriminator(fake), 0.0)) / 2

    def terms(self, model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        fake = model.generator(model.sample_noise(len(x), x.device))
        discriminator = self._discriminator_loss(model.discriminator, x, fake)
        generator = _bce(model.discriminator(fake), 1.0)
        # the two players' losses added: a GAN has no single loss to minimise, so early stopping on it means little
        return {"loss": discriminator + generator, "discriminator_loss": discriminator, "generator_loss": generator}


def _bce(logits: Tensor, label: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))
