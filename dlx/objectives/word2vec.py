"""Skip-gram and CBOW (Mikolov et al. 2013): word vectors learned by predicting a word from its neighbours.

Skip-gram predicts each context word from the centre word, CBOW the centre word from the mean of its context's
vectors (dlx/data/word_pairs.py makes the examples; dlx/models/word2vec.py holds E and C). The notes train with the full
softmax, -log softmax(C u)_target, whose cost grows with the vocabulary. Negative sampling (`negatives: k`) is the
cheaper option: the target's score is pushed up and the scores of k words drawn from the unigram distribution raised
to the power 3/4 pushed down, -log sigma(c_target . u) - sum_j log sigma(-c_j . u), so a step touches k + 1 rows of C.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from dlx.data.base import Splits
from dlx.data.word_pairs import CBOW, SKIPGRAM, PairSplits, pair_splits
from dlx.data.text import TextCorpus
from dlx.objectives.base import Objective
from dlx.registry import objectives

NOISE_POWER = 0.75  # the unigram distribution to the 3/4: rare words drawn more often than their frequency


class WordVectors(Objective):
    """What skip-gram and CBOW share; `kind` says which examples they learn from."""

    kind: str
    measures_metrics = False
    uses_loss = False

    def __init__(self, model: nn.Module, spec, loss_fn: nn.Module, *,
                 window: Annotated[int, Field(ge=1, le=100)] = 5,
                 negatives: Annotated[int, Field(ge=0, le=1000)] = 5,
                 subsample: Annotated[float, Field(ge=0.0, le=1.0)] = 1e-3):
        # window: L_max for skip-gram (each word draws its L from 1..L_max), L on each side for CBOW
        # negatives: k noise words per example (negative sampling); 0: the full softmax over the vocabulary
        # subsample: the threshold t of frequent-word subsampling; 0: keep every word
        super().__init__(model, spec, loss_fn)
        self.window, self.negatives, self.subsample = window, negatives, subsample
        self.noise = torch.ones(spec.num_classes)  # until prepare() reads the train split's word counts

    @classmethod
    def text_splits(cls, corpus: TextCorpus, fractions: tuple[float, float, float], device: torch.device, *,
                    window: int, subsample: float, **others) -> PairSplits:
        return pair_splits(corpus, fractions, device, cls.kind, window, subsample)

    def prepare(self, data: Splits) -> None:
        if isinstance(data, PairSplits):
            self.noise = data.counts.double().pow(NOISE_POWER).float()

    def loss(self, group: str, nets: Mapping[str, nn.Module], x: Tensor, y: Tensor) -> Tensor:
        return self._loss(nets["model"], x, y)

    def terms(self, model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        return {"loss": self._loss(model, x, y)}

    def _loss(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        if not self.negatives:
            return F.cross_entropy(model(x), y)  # the full softmax
        self.noise = self.noise.to(y.device)  # once: drawn where the batch is
        noise = torch.multinomial(self.noise, len(y) * self.negatives, replacement=True).view(len(y), -1)  # (B, k)
        scores = model(x, torch.cat([y[:, None], noise], 1))  # (B, 1 + k)
        # a noise word that is the target itself is no negative (as in word2vec's C code)
        wrong = (noise != y[:, None]).float()
        return -(F.logsigmoid(scores[:, 0]) + (F.logsigmoid(-scores[:, 1:]) * wrong).sum(1)).mean()


@objectives.register("skipgram", "word vectors by predicting each context word from the centre word (window drawn "
                     "from 1..window per word); full softmax or negative sampling")
class SkipGram(WordVectors):
    kind = SKIPGRAM


@objectives.register("cbow", "word vectors by predicting the centre word from the mean of its context words' "
                     "vectors (window words on each side); full softmax or negative sampling")
class CBOWObjective(WordVectors):
    kind = CBOW
