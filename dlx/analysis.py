"""What a classifier's outputs say beyond its metrics: the reject option, a binary decision at a threshold
with its ROC curve, and the examples with the largest losses. Tensors in, plain numbers out; drawing is
plots.py's job."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torchmetrics.classification import BinaryAUROC, BinaryConfusionMatrix, BinaryROC

from dlx import limits
from dlx.data.base import CLASSIFICATION
from dlx.errors import DlxError


def parse_margins(texts: list[str]) -> list[float]:
    """'--reject-margin 0.1 --reject-margin 0:0.5:0.05' -> [0.0, 0.05, ..., 0.5, 0.1], sorted, each once."""
    margins: set[float] = set()
    for text in texts:
        parts = text.split(":")
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            numbers = []
        if len(numbers) not in (1, 3) or not all(map(math.isfinite, numbers)):
            raise DlxError(f"--reject-margin '{text}': give a margin like 0.2 or a range START:STOP:STEP like 0:0.5:0.05")
        if len(numbers) == 3:
            start, stop, step = numbers
            if step <= 0 or stop < start:
                raise DlxError(f"--reject-margin '{text}': a range needs START <= STOP and a positive STEP")
            count = limits.steps(start, stop, step)
            limits.check(f"--reject-margin '{text}'", count, limits.MARGINS, "margins")
            numbers = [start + i * step for i in range(count)]
        for m in numbers:
            if not 0.0 <= m <= 1.0:
                raise DlxError(f"--reject-margin '{text}': margins are differences of probabilities, between 0 and 1")
            margins.add(round(m, 10))
    return sorted(margins)


def reject_curve(probs: Tensor, y: Tensor, margins: list[float]) -> list[dict[str, Any]]:
    """The reject option: refuse to answer when the two largest probabilities differ by less than the margin;
    for each margin, the error rate among the answered examples and the rate of rejected ones."""
    top2 = probs.topk(2, dim=1).values  # (N, 2)
    margin = top2[:, 0] - top2[:, 1]
    wrong = probs.argmax(dim=1) != y
    rows = []
    for m in margins:
        answered = margin >= m
        n, errors = int(answered.sum()), int((wrong & answered).sum())
        rows.append({"margin": m, "answered": n, "errors": errors, "rejection_rate": 1 - n / len(y),
                     "error_rate": errors / n if n else None})  # nothing answered: no error rate
    return rows


DEFAULT_THRESHOLD = 0.5


def decide(probs: Tensor, threshold: float) -> Tensor:
    """A two-class classifier's answers (N,): class 1 exactly when its probability reaches `threshold`.
    (torchmetrics' own thresholds answer class 1 only above it, which would disagree at the threshold itself.)"""
    return (probs[:, 1] >= threshold).long()


def binary_decision(probs: Tensor, y: Tensor, threshold: float) -> dict[str, Any]:
    """A two-class classifier as a score for class 1: the ROC curve, its area, and the confusion matrix of
    the answers `decide` gives at `threshold`."""
    score = probs[:, 1]
    fpr, tpr, thresholds = BinaryROC()(score, y)
    matrix = BinaryConfusionMatrix()(decide(probs, threshold), y)  # rows: true 0, 1; columns: predicted 0, 1
    (tn, fp), (fn, tp) = matrix.tolist()
    return {"auc": BinaryAUROC()(score, y).item(), "threshold": threshold, "confusion_matrix": matrix.tolist(),
            "true_positive_rate": tp / max(tp + fn, 1), "false_positive_rate": fp / max(fp + tn, 1),
            "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": thresholds.tolist()}}


def check_threshold(threshold: float | None, num_classes: int, task: str) -> None:
    if threshold is None:
        return
    if task != CLASSIFICATION or num_classes != 2:
        what = f"{num_classes} classes" if task == CLASSIFICATION else f"{task} data"
        raise DlxError(f"--threshold applies to two-class classifiers, and this run has {what}; leave it out")
    if not 0.0 <= threshold <= 1.0:
        raise DlxError(f"--threshold {threshold}: a threshold on the probability of class 1 is between 0 and 1")


def example_losses(outputs: Tensor, y: Tensor, task: str) -> Tensor:
    """One loss per example: -log p(true class) for a classifier's probabilities, else the mean squared error."""
    if task == CLASSIFICATION:
        return -outputs.gather(1, y[:, None])[:, 0].clamp_min(1e-12).log()
    return (outputs - y).pow(2).flatten(1).mean(dim=1)


def top_losses(outputs: Tensor, y: Tensor, task: str, n: int) -> Tensor:
    """Indices of the `n` examples with the largest losses, the largest first."""
    if n < 1:
        raise DlxError(f"--top-losses {n}: give the number of examples to show (1 or more)")
    losses = example_losses(outputs, y, task)
    return losses.topk(min(n, len(losses))).indices
