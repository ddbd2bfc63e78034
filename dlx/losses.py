"""Loss functions by name. Each takes the model's raw outputs (logits) and the targets."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field
from torch import nn

from dlx.data.base import CLASSIFICATION, REGRESSION
from dlx.registry import losses


@losses.register("cross_entropy", "categorical cross-entropy on softmax outputs, averaged over examples",
                 task=CLASSIFICATION)
def cross_entropy(*, label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0) -> nn.Module:
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)


class HalfSquaredError(nn.Module):
    """The course's E = 1/2 sum (y - d)^2, averaged over examples so the rate does not depend on batch size."""

    def forward(self, output, target):
        return 0.5 * (output - target).pow(2).sum(dim=-1).mean()


@losses.register("mse", "mean squared error; half: true gives the course's 1/2 sum (y - d)^2 per example",
                 task=REGRESSION)
def mse(*, half: bool = False) -> nn.Module:
    return HalfSquaredError() if half else nn.MSELoss()
