"""Loss and metrics of a model over a split, without gradients."""
from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn
from torchmetrics import MetricCollection

from dlx.models.modes import evaluating


def measure(model: nn.Module, batches: Iterable[tuple[Tensor, Tensor]], loss_fn: nn.Module,
            metrics: MetricCollection) -> dict[str, float]:
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
