"""Metrics of encoder-decoders, on (B, T') predicted and (B, T) target token ids: each sequence counts up to its
first </s>, padding never. torchmetrics states, so they add up over batches and across processes. Reading which are
better when higher (`dlx runs`) imports neither torch nor torchmetrics: both are imported where a metric works."""
from __future__ import annotations

from typing import TYPE_CHECKING

from dlx.data.settings import SEQ2SEQ
from dlx.registry import metrics

if TYPE_CHECKING:
    from torch import Tensor
    from torchmetrics import Metric

    from dlx.data.base import DataSpec
    from dlx.data.sequence_pairs import TokenVocab


def aligned(predicted: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Predictions cut or padded to the targets' length, with every token after a predicted </s> made <pad>; and
    the mask of the target's tokens (its </s> included)."""
    import torch

    from dlx.data.sequence_pairs import EOS_ID, PAD_ID

    length = target.shape[1]
    predicted = predicted[:, :length]
    if predicted.shape[1] < length:
        predicted = torch.nn.functional.pad(predicted, (0, length - predicted.shape[1]), value=PAD_ID)
    ended = (predicted == EOS_ID).long().cumsum(dim=1) - (predicted == EOS_ID).long() > 0  # after the first </s>
    return predicted.masked_fill(ended, PAD_ID), target != PAD_ID


def exact_and_tokens(predicted: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(B,) whether each sequence is right to its </s>, (B,) its right tokens and (B,) its tokens."""
    from dlx.data.sequence_pairs import PAD_ID

    predicted, real = aligned(predicted, target)
    right = (predicted == target) & real
    beyond = (predicted != PAD_ID) & ~real  # tokens where the target has ended (a missing or late </s>)
    return (right.sum(1) == real.sum(1)) & ~beyond.any(1), right.sum(1), real.sum(1)


def _metric_classes():
    """Defined on first use: torchmetrics costs more to import than torch."""
    import torch
    from torchmetrics import Metric
    from torchmetrics.text import BLEUScore

    class SequenceAccuracy(Metric):
        """The share of sequences translated exactly: every token and the </s> at the right place."""

        higher_is_better, is_differentiable, full_state_update = True, False, False

        def __init__(self):
            super().__init__()
            self.add_state("right", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
            self.add_state("total", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

        def update(self, predicted: Tensor, target: Tensor) -> None:
            exact, _, _ = exact_and_tokens(predicted, target)
            self.right += exact.sum()
            self.total += len(exact)

        def compute(self) -> Tensor:
            return self.right.float() / self.total.clamp_min(1)

    class TokenAccuracy(SequenceAccuracy):
        """The share of target tokens (</s> included) the output has at the same position."""

        def update(self, predicted: Tensor, target: Tensor) -> None:
            _, right, real = exact_and_tokens(predicted, target)
            self.right += right.sum()
            self.total += real.sum()

    class Bleu(BLEUScore):
        """BLEU-4 of the translations' words against the targets' (torchmetrics), as for sentence pairs."""

        def __init__(self, vocab: TokenVocab):
            super().__init__(n_gram=4)
            self.vocab = vocab

        def update(self, predicted: Tensor, target: Tensor) -> None:
            outputs = [self.vocab.decode(row) for row in predicted.tolist()]
            super().update(outputs, [[self.vocab.decode(row)] for row in target.tolist()])

    return SequenceAccuracy, TokenAccuracy, Bleu


@metrics.register("sequence_accuracy", "exact-sequence accuracy: the share of outputs equal to the target, to its end",
                  task=SEQ2SEQ, higher_is_better=True)
def sequence_accuracy(spec: DataSpec) -> Metric:
    return _metric_classes()[0]()


@metrics.register("token_accuracy", "the share of target tokens an output has at the same position",
                  task=SEQ2SEQ, higher_is_better=True)
def token_accuracy(spec: DataSpec) -> Metric:
    return _metric_classes()[1]()


@metrics.register("bleu", "BLEU-4 of the outputs' words against the targets' (torchmetrics), for parallel text",
                  task=SEQ2SEQ, higher_is_better=True)
def bleu(spec: DataSpec) -> Metric:
    from dlx.data.sequence_pairs import TokenVocab

    return _metric_classes()[2](TokenVocab(spec.class_names))
