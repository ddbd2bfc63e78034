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
from dlx.registry import metrics

DEFAULTS = {CLASSIFICATION: ["accuracy"], REGRESSION: ["mse", "mae"], RECONSTRUCTION: ["mse", "mae"],
            LANGUAGE: ["perplexity", "bpc"]}

def higher_is_better(key: str) -> bool:
    """Whether larger values of a logged key ('val/accuracy', 'test/mse', 'train/epoch_loss') are better: the
    registered metric's direction (torchmetrics' higher_is_better); losses and anything else are minimised."""
    name = key.rsplit("/", 1)[-1]
    return name in metrics and metrics.get(name).meta["higher_is_better"]


def logged_keys(groups: tuple[str, ...], terms: tuple[str, ...], metric_names: list[str]) -> list[str]:
    """Every key a run logs per epoch: the training loss of each parameter group, then validation's terms and metrics."""
    train = ["train/epoch_loss"] if len(groups) == 1 else [f"train/{g}_epoch_loss" for g in groups]
    return [*train, *(f"val/{t}" for t in terms), *(f"val/{m}" for m in metric_names)]


# validate_args=False: the checks cost a device sync per batch, and the loop's own tensors are well formed


@metrics.register("accuracy", "fraction of examples whose largest logit is the true class",
                  task=CLASSIFICATION, higher_is_better=True)
def accuracy(spec: DataSpec) -> Metric:
    return MulticlassAccuracy(spec.num_classes, average="micro", validate_args=False)


@metrics.register("top5", "top-5 accuracy: the true class is among the five largest logits",
                  task=CLASSIFICATION, higher_is_better=True)
def top5(spec: DataSpec) -> Metric:
    return MulticlassAccuracy(spec.num_classes, top_k=min(5, spec.num_classes), average="micro", validate_args=False)


@metrics.register("precision", "precision, averaged over classes (macro)", task=CLASSIFICATION, higher_is_better=True)
def precision(spec: DataSpec) -> Metric:
    return MulticlassPrecision(spec.num_classes, average="macro", validate_args=False)


@metrics.register("recall", "recall, averaged over classes (macro)", task=CLASSIFICATION, higher_is_better=True)
def recall(spec: DataSpec) -> Metric:
    return MulticlassRecall(spec.num_classes, average="macro", validate_args=False)


@metrics.register("f1", "F1 score, averaged over classes (macro)", task=CLASSIFICATION, higher_is_better=True)
def f1(spec: DataSpec) -> Metric:
    return MulticlassF1Score(spec.num_classes, average="macro", validate_args=False)


def _outputs(spec: DataSpec) -> int:
    """Target columns measured apart; a reconstruction measures all its values as one output."""
    return spec.out_features if spec.task == REGRESSION else 1


@metrics.register("mse", "mean squared error", task=REGRESSION, higher_is_better=False)
def mse(spec: DataSpec) -> Metric:
    return MeanSquaredError(num_outputs=_outputs(spec))


@metrics.register("rmse", "root mean squared error", task=REGRESSION, higher_is_better=False)
def rmse(spec: DataSpec) -> Metric:
    return MeanSquaredError(squared=False, num_outputs=_outputs(spec))


@metrics.register("mae", "mean absolute error", task=REGRESSION, higher_is_better=False)
def mae(spec: DataSpec) -> Metric:
    return MeanAbsoluteError(num_outputs=_outputs(spec))


@metrics.register("r2", "coefficient of determination", task=REGRESSION, higher_is_better=True)
def r2(spec: DataSpec) -> Metric:
    return R2Score(multioutput="uniform_average")


class BitsPerCharacter(Perplexity):
    """log2 of the perplexity: the mean negative log-likelihood per character in bits (nats / ln 2)."""

    def compute(self):
        return super().compute().log() / math.log(2)


@metrics.register("perplexity", "exp of the mean negative log-likelihood per token",
                  task=LANGUAGE, higher_is_better=False)
def perplexity(spec: DataSpec) -> Metric:
    return Perplexity()


@metrics.register("bpc", "bits per character: the mean negative log-likelihood per token in bits",
                  task=LANGUAGE, higher_is_better=False)
def bpc(spec: DataSpec) -> Metric:
    return BitsPerCharacter()
