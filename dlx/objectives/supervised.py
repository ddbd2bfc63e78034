"""Supervised learning: loss(model(x), y) with one optimizer, the shape of the course's first half."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from torch import Tensor, nn

from dlx.data.base import Splits
from dlx.models.checks import check_targets
from dlx.models.modes import evaluating
from dlx.objectives.base import Batches, Objective
from dlx.registry import objectives

if TYPE_CHECKING:  # torchmetrics is imported where metrics are built: it costs more than torch
    from torchmetrics import MetricCollection


def measure(model: nn.Module, batches: Batches, loss_fn: nn.Module, metrics: MetricCollection) -> dict[str, float]:
    """{'loss': mean loss per example, <metric>: value, ...}; the model is left in the mode it was in."""
    metrics.reset()
    total, count = None, 0
    with evaluating(model):
        for x, y in batches:
            out = model(x)
            batch_loss = loss_fn(out, y) * len(x)  # losses average over the batch; weight by its size
            total = batch_loss if total is None else total + batch_loss
            count += len(x)
            metrics.update(out, y)
    values = {"loss": total.item() / count}
    # a metric over several regression targets is a vector: its mean over the targets is logged
    values.update({name: value.float().mean().item() for name, value in metrics.compute().items()})
    return values


@objectives.register("supervised", "loss(model(x), y) with one optimizer: classification, regression, "
                     "autoencoders, language models (the default)")
class Supervised(Objective):
    def check(self, data: Splits, model_name: str) -> None:
        check_targets(self.model, data, model_name)

    def loss(self, group: str, nets: Mapping[str, nn.Module], x: Tensor, y: Tensor) -> Tensor:
        return self.loss_fn(nets["model"](x), y)

    def measure(self, model: nn.Module, batches: Batches, metrics: MetricCollection) -> dict[str, float]:
        return measure(model, batches, self.loss_fn, metrics)
