"""Loss functions by name. Each takes the model's raw outputs (logits) and the targets.

The l1 and l2 penalties of the loss section are not entries: any loss can carry them (see Penalized),
so they are added by dlx.build, which has the model.
"""
from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from dlx.data.base import CLASSIFICATION, LANGUAGE, REGRESSION
from dlx.errors import DlxError
from dlx.mining import batch_hard, squared_distances
from dlx.registry import losses

Positive = Annotated[float, Field(gt=0.0)]


def positions(logits: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Classes last, as a language model's (B, T, V) with next tokens (B, T): every position becomes one
    example, (B*T, V) and (B*T,). PyTorch's classes-second layout, (B, C) or a per-step (B, C, T), passes as is."""
    if logits.shape[:-1] == target.shape:
        return logits.flatten(0, -2), target.flatten()
    return logits, target


class CrossEntropy(nn.CrossEntropyLoss):
    """Logits (B, C) with classes (B,); per position: (B, C, T) with (B, T), or a language model's (B, T, V)
    with next tokens (B, T) (the negative log-likelihood per character, for text)."""

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return super().forward(*positions(logits, target))


@losses.register("cross_entropy", "categorical cross-entropy on softmax outputs, averaged over examples "
                 "(for text: over every position)", task=(CLASSIFICATION, LANGUAGE))
def cross_entropy(*, label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0) -> nn.Module:
    return CrossEntropy(label_smoothing=label_smoothing)


class HalfSquaredError(nn.Module):
    """The course's E = 1/2 sum (y - d)^2, averaged over examples so the rate does not depend on batch size."""

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        return 0.5 * (output - target).pow(2).sum(dim=-1).mean()


@losses.register("mse", "mean squared error; half: true gives the course's 1/2 sum (y - d)^2 per example",
                 task=REGRESSION)
def mse(*, half: bool = False) -> nn.Module:
    return HalfSquaredError() if half else nn.MSELoss()


@losses.register("mae", "mean absolute error", task=REGRESSION)
def mae() -> nn.Module:
    return nn.L1Loss()


@losses.register("huber", "Huber: squared error within delta of the target, absolute error beyond it", task=REGRESSION)
def huber(*, delta: Positive = 1.0) -> nn.Module:
    return nn.HuberLoss(delta=delta)


class BinaryCrossEntropy(nn.Module):
    """Binary cross-entropy on a logistic output, computed from logits (stable for large logits).

    Class targets 0/1 take one logit per example; two logits (what a two-class model outputs) are one
    logistic logit, their difference, so then this equals cross_entropy. Float targets in [0, 1] (several
    labels, or pixels to reconstruct) take one logit per target value.
    """

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        if target.is_floating_point():
            return F.binary_cross_entropy_with_logits(output, target)
        if output.shape[-1] not in (1, 2):
            raise DlxError(f"loss 'bce' is for two classes, but the model has {output.shape[-1]} outputs; "
                           f"use cross_entropy")
        logit = output[..., 1] - output[..., 0] if output.shape[-1] == 2 else output[..., 0]
        return F.binary_cross_entropy_with_logits(logit, target.to(logit.dtype))


@losses.register("bce", "binary cross-entropy on a logistic output (from logits): two classes or targets in [0, 1]")
def bce() -> nn.Module:
    return BinaryCrossEntropy()


class NegativeLogLikelihood(nn.Module):
    def __init__(self, log_probs: bool):
        super().__init__()
        self.log_probs = log_probs

    def forward(self, output: Tensor, target: Tensor) -> Tensor:  # as CrossEntropy
        output, target = positions(output, target)
        return F.nll_loss(output if self.log_probs else F.log_softmax(output, dim=1), target)


@losses.register("nll", "negative log-likelihood -log p(target), averaged (= cross-entropy on logits)",
                 task=(CLASSIFICATION, LANGUAGE))
def nll(*, inputs: Literal["logits", "log_probs"] = "logits") -> nn.Module:
    """inputs: logits (softmax taken here) or log_probs (the model ends in log_softmax)."""
    return NegativeLogLikelihood(inputs == "log_probs")


def triplet(anchor: Tensor, positive: Tensor, negative: Tensor, alpha: float) -> Tensor:
    """The notes' max(||f(xp) - f(xa)||^2 - ||f(xn) - f(xa)||^2 + alpha, 0), averaged over triplets."""
    closer = (positive - anchor).pow(2).sum(-1) - (negative - anchor).pow(2).sum(-1)
    return (closer + alpha).clamp_min(0.0).mean()


class BatchHardTriplet(nn.Module):
    """Triplets mined in each batch: every example is an anchor, with its farthest same-class example as the
    positive and its nearest other-class example as the negative (Hermans et al. 2017, "batch hard")."""

    def __init__(self, alpha: float):
        super().__init__()
        self.alpha = alpha

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:  # (B, D), (B,)
        flat = embeddings.flatten(1)
        _, positive, negative, usable = batch_hard(squared_distances(flat.detach()), labels)
        if not usable.any():
            return flat.sum() * 0.0  # no triplet in this batch: no gradient, but a loss to log
        anchors = usable.nonzero().squeeze(1)
        return triplet(flat[anchors], flat[positive[anchors]], flat[negative[anchors]], self.alpha)


@losses.register("triplet", "triplet loss on embeddings, squared distances, margin alpha, hardest triplets per batch",
                 task=CLASSIFICATION)
def triplet_loss(*, alpha: Positive = 1.0) -> nn.Module:
    return BatchHardTriplet(alpha)


class Penalized(nn.Module):
    """A loss plus l1 * sum |w| + l2/2 * sum w^2 over the given weights (l2 is then SGD's weight decay).

    The penalty belongs to the training objective: measured without gradients (validation, test,
    dlx evaluate) this is the data loss alone, so val/loss stays comparable between penalties.
    """

    def __init__(self, loss: nn.Module, weights: list[Tensor], l1: float, l2: float):
        super().__init__()
        self.loss, self.l1, self.l2 = loss, l1, l2
        self.weights = weights  # a plain list: the model owns these parameters

    def forward(self, output: Tensor, target: Tensor) -> Tensor:
        value = self.loss(output, target)
        if not torch.is_grad_enabled():
            return value
        if self.l1:
            value = value + self.l1 * sum(w.abs().sum() for w in self.weights)
        if self.l2:
            value = value + 0.5 * self.l2 * sum(w.pow(2).sum() for w in self.weights)
        return value
