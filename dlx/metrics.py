"""Metrics by name, computed with torchmetrics (which also reduces them across processes).

Each entry builds a metric for a data spec; `task` says which kind of data it can measure.
"""
from __future__ import annotations

import math

from torchmetrics import Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score, MulticlassPrecision, MulticlassRecall
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score
from torchmetrics.text import Perplexity

from dlx.data.base import CLASSIFICATION, LANGUAGE, RECONSTRUCTION, REGRESSION, DataSpec
from dlx.errors import DlxError
from dlx.registry import metrics

DEFAULTS = {CLASSIFICATION: ["accuracy"], REGRESSION: ["mse", "mae"], RECONSTRUCTION: ["mse", "mae"],
            LANGUAGE: ["perplexity", "bpc"]}
HIGHER_IS_BETTER = {"accuracy", "top5", "precision", "recall", "f1", "r2"}

# validate_args=False: the checks cost a device sync per batch, and the loop's own tensors are well formed


@metrics.register("accuracy", "fraction of examples whose largest logit is the true class", task=CLASSIFICATION)
def accuracy(spec: DataSpec) -> Metric:
    return MulticlassAccuracy(spec.num_classes, average="micro", validate_args=False)


def top5_applies(num_classes: int) -> bool:
    """With five classes or fewer the true class is always among the five largest logits: top-5 accuracy is 1."""
    return num_classes > 5


@metrics.register("top5", "top-5 accuracy: the true class is among the five largest logits (more than 5 classes)",
                  task=CLASSIFICATION)
def top5(spec: DataSpec) -> Metric:
    if not top5_applies(spec.num_classes):
        raise DlxError(f"eval.metrics: top5 needs more than 5 classes and this data has {spec.num_classes} "
                       "(the true class is always among the top five); leave it out")
    return MulticlassAccuracy(spec.num_classes, top_k=5, average="micro", validate_args=False)


@metrics.register("precision", "precision, averaged over classes (macro)", task=CLASSIFICATION)
def precision(spec: DataSpec) -> Metric:
    return MulticlassPrecision(spec.num_classes, average="macro", validate_args=False)


@metrics.register("recall", "recall, averaged over classes (macro)", task=CLASSIFICATION)
def recall(spec: DataSpec) -> Metric:
    return MulticlassRecall(spec.num_classes, average="macro", validate_args=False)


@metrics.register("f1", "F1 score, averaged over classes (macro)", task=CLASSIFICATION)
def f1(spec: DataSpec) -> Metric:
    return MulticlassF1Score(spec.num_classes, average="macro", validate_args=False)


def _outputs(spec: DataSpec) -> int:
    """Target columns measured apart; a reconstruction measures all its values as one output."""
    return spec.out_features if spec.task == REGRESSION else 1


@metrics.register("mse", "mean squared error", task=REGRESSION)
def mse(spec: DataSpec) -> Metric:
    return MeanSquaredError(num_outputs=_outputs(spec))


@metrics.register("rmse", "root mean squared error", task=REGRESSION)
def rmse(spec: DataSpec) -> Metric:
    return MeanSquaredError(squared=False, num_outputs=_outputs(spec))


@metrics.register("mae", "mean absolute error", task=REGRESSION)
def mae(spec: DataSpec) -> Metric:
    return MeanAbsoluteError(num_outputs=_outputs(spec))


@metrics.register("r2", "coefficient of determination", task=REGRESSION)
def r2(spec: DataSpec) -> Metric:
    return R2Score(multioutput="uniform_average")


class BitsPerCharacter(Perplexity):
    """log2 of the perplexity: the mean negative log-likelihood per character in bits (nats / ln 2)."""

    def compute(self):
        return super().compute().log() / math.log(2)


@metrics.register("perplexity", "exp of the mean negative log-likelihood per token", task=LANGUAGE)
def perplexity(spec: DataSpec) -> Metric:
    return Perplexity()


@metrics.register("bpc", "bits per character: the mean negative log-likelihood per token in bits", task=LANGUAGE)
def bpc(spec: DataSpec) -> Metric:
    return BitsPerCharacter()
