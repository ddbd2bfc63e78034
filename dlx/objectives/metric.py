"""Metric learning: a network f whose distance d(x1, x2) = ||f(x1) - f(x2)||^2 is small within a class and large
between classes. The model is any backbone with an embedding head (`model.embedding_head: D`: its output layer gives D
values, L2-normalised, so d lies in [0, 4]).

Batches come from a class-balanced sampler (P classes x K examples, `objective.per_class` = K and train.batch_size =
P * K), so every example finds positives and negatives in its batch. Validation measures retrieval within the split
(recall@1, recall@5, k-NN accuracy, mAP: dlx/retrieval.py) beside the loss on plain batches of the split.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field
from torch import Tensor, nn

from dlx.data.base import CLASSIFICATION, Splits
from dlx.data.sampler import ClassBalancedBatches
from dlx.errors import DlxError
from dlx.mining import MINERS, squared_distances
from dlx.models.embedding import Embedder
from dlx.objectives import supervised
from dlx.objectives.base import Batches, Objective
from dlx.registry import objectives

if TYPE_CHECKING:  # torchmetrics is imported where metrics are built: it costs more than torch
    from torchmetrics import MetricCollection

Margin = Annotated[float, Field(gt=0.0, le=4.0)]  # squared distances of unit vectors lie in [0, 4]
PerClass = Annotated[int, Field(ge=2, le=4096)]


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """The mean of `values` where `mask` holds, 0 (with a zero gradient) where it holds nowhere; no device read."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


class TripletLoss(nn.Module):
    """The notes' max(d(a, p) - d(a, n) + alpha, 0), averaged over the batch's mined triplets."""

    def __init__(self, alpha: float, mining: str):
        super().__init__()
        self.alpha, self.mine = alpha, MINERS[mining]

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:  # (B, D), (B,)
        anchor, positive, negative, valid = self.mine(squared_distances(embeddings.detach()), labels)
        a, p, n = embeddings[anchor], embeddings[positive], embeddings[negative]
        hinge = ((a - p).pow(2).sum(-1) - (a - n).pow(2).sum(-1) + self.alpha).clamp_min(0.0)
        return masked_mean(hinge, valid)


class ContrastiveLoss(nn.Module):
    """Over every pair of the batch: d for pairs of one class, max(tau - d, 0) for pairs of two classes (the
    notes' Siamese criterion: small within a class, above the margin tau between classes; Hadsell et al. 2006 in
    squared distances). The two kinds are averaged apart and added, so the many pairs of two classes do not drown
    the few of one."""

    def __init__(self, tau: float):
        super().__init__()
        self.tau = tau

    def forward(self, embeddings: Tensor, labels: Tensor) -> Tensor:
        dist = squared_distances(embeddings)  # (B, B)
        same = labels[:, None] == labels[None]
        pairs = ~same.new_ones(same.shape).tril()  # each unordered pair once: above the diagonal
        return masked_mean(dist, same & pairs) + masked_mean((self.tau - dist).clamp_min(0.0), ~same & pairs)


class MetricLearning(Objective):
    """What the metric objectives share: a loss on (embeddings, labels), class-balanced batches, retrieval metrics."""

    embeds = True
    uses_loss = False

    def __init__(self, model: nn.Module, spec, loss_fn: nn.Module, criterion: nn.Module, per_class: int):
        super().__init__(model, spec, loss_fn)
        self.criterion, self.per_class = criterion, per_class

    def check(self, data: Splits, model_name: str) -> None:
        if data.spec.task != CLASSIFICATION or data["train"][1].dim() != 1:
            raise DlxError(f"metric learning needs one class label per example; this data is {data.spec.task}")
        if not isinstance(self.model, Embedder):
            raise DlxError(f"metric learning trains an embedding: give the model an embedding head, e.g. "
                           f"model.embedding_head=64 (model '{model_name}')")

    def train_batches(self, data: Splits, batch_size: int) -> ClassBalancedBatches:
        return ClassBalancedBatches(*data["train"], batch_size, self.per_class)

    def loss(self, group: str, nets: Mapping[str, nn.Module], x: Tensor, y: Tensor) -> Tensor:
        return self.criterion(nets["model"](x), y)

    def measure(self, model: nn.Module, batches: Batches, metrics: MetricCollection) -> dict[str, float]:
        return supervised.measure(model, batches, self.criterion, metrics)


@objectives.register("triplet", "triplet loss max(d(a,p) - d(a,n) + alpha, 0) on an embedding (model.embedding_head), "
                     "triplets mined per batch: semi_hard (the notes') or batch_hard; P x K class-balanced batches")
class Triplet(MetricLearning):
    def __init__(self, model: nn.Module, spec, loss_fn: nn.Module, *, alpha: Margin = 0.2,
                 mining: Literal["semi_hard", "batch_hard"] = "semi_hard", per_class: PerClass = 4):
        super().__init__(model, spec, loss_fn, TripletLoss(alpha, mining), per_class)


@objectives.register("siamese", "contrastive loss on every pair of a batch: d within a class, max(tau - d, 0) "
                     "between classes, on an embedding (model.embedding_head); P x K class-balanced batches")
class Siamese(MetricLearning):
    def __init__(self, model: nn.Module, spec, loss_fn: nn.Module, *, tau: Margin = 1.0, per_class: PerClass = 4):
        super().__init__(model, spec, loss_fn, ContrastiveLoss(tau), per_class)
