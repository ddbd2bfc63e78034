"""word2vec (Mikolov et al. 2013) as the notes define it: a word embedding E and a context embedding C, no hidden layer.

The input is n word ids per example (one centre word for skip-gram, the 2L words around the target for CBOW);
u = the mean of their rows of E, and z = C u scores every word of the vocabulary: P(w | input) = softmax(z). C is the
output layer's weights, one row per word, so negative sampling can score a few words instead of all of them.
After training, E holds the word vectors (`dlx evaluate RUN --probe WORD`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn

from dlx.data.base import LANGUAGE, DataSpec
from dlx.data.text import vocab_size
from dlx.registry import models


@dataclass
class Word2VecConfig:
    width: Annotated[int, Field(ge=1, le=16384)] = 100  # the length of a word's vector, in E and in C


@models.register("word2vec", "word and context embeddings, no hidden layer: for the skipgram and cbow objectives",
                 config=Word2VecConfig, task=LANGUAGE, objective=("skipgram", "cbow"))
class Word2Vec(nn.Module):
    def __init__(self, spec: DataSpec, config: Word2VecConfig):
        super().__init__()
        vocab = vocab_size(spec, "word2vec")
        self.embedding = nn.Embedding(vocab, config.width)  # E: the word vectors
        self.context = nn.Embedding(vocab, config.width)  # C: the output layer's weights
        # word2vec's own start: small random word vectors, zero context vectors (every score 0 at first)
        nn.init.uniform_(self.embedding.weight, -0.5 / config.width, 0.5 / config.width)
        nn.init.zeros_(self.context.weight)

    @property
    def token_embedding(self) -> nn.Embedding:
        return self.embedding

    def forward(self, words: Tensor, candidates: Tensor | None = None) -> Tensor:
        """words (B, n) -> scores z (B, V) of every word, or (B, K) of the `candidates` (B, K) only."""
        u = self.embedding(words).mean(1)  # (B, d): the mean of the input words' vectors (CBOW divides by 2L)
        if candidates is None:
            return u @ self.context.weight.T  # (B, V)
        return torch.einsum("bd,bkd->bk", u, self.context(candidates))  # (B, K)
