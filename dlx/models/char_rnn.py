"""Character-level recurrent language models: char_rnn, char_lstm, char_gru.

Embedding -> stacked recurrent layers (dropout between them) -> a linear layer to next-character
logits. The course's vanilla RNN is h_t = tanh(W h_{t-1} + U x_t + b). A RecurrentState passed to
`forward` carries the hidden state across calls, so generation reads each character once.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated

from pydantic import Field
from torch import Tensor, nn

from dlx.data.base import LANGUAGE, DataSpec
from dlx.data.text import vocab_size
from dlx.registry import models

CELLS = {
    "rnn": (nn.RNN, "vanilla RNN h_t = tanh(W h_{t-1} + U x_t + b)"),
    "lstm": (nn.LSTM, "LSTM"),
    "gru": (nn.GRU, "GRU"),
}


@dataclass
class CharRNNConfig:
    embedding: Annotated[int, Field(ge=1, le=16384)] = 64  # size of a character's vector (a one-hot times a matrix)
    hidden: Annotated[int, Field(ge=1, le=16384)] = 256
    layers: Annotated[int, Field(ge=1, le=32)] = 2  # stacked: each layer reads the one below's outputs
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0  # between stacked layers and before the output layer


class RecurrentState:
    """The hidden state after the characters read so far: (layers, B, hidden), a pair of them for an LSTM."""

    def __init__(self):
        self.state: Tensor | tuple[Tensor, Tensor] | None = None

    def reorder(self, index: Tensor) -> None:
        """Keep sequence index[i] as sequence i (beam search); the batch is dimension 1."""
        if isinstance(self.state, tuple):
            self.state = tuple(s[:, index] for s in self.state)
        elif self.state is not None:
            self.state = self.state[:, index]


class CharRNN(nn.Module):
    max_context = None  # the hidden state carries any length of text

    def __init__(self, cell: str, spec: DataSpec, config: CharRNNConfig):
        super().__init__()
        vocab = vocab_size(spec, f"char_{cell}")
        self.embed = nn.Embedding(vocab, config.embedding)
        self.rnn = CELLS[cell][0](config.embedding, config.hidden, config.layers, batch_first=True,
                                  dropout=config.dropout if config.layers > 1 else 0.0)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, vocab)

    @property
    def token_embedding(self) -> nn.Embedding:
        return self.embed

    def new_cache(self) -> RecurrentState:
        return RecurrentState()

    def forward(self, idx: Tensor, cache: RecurrentState | None = None) -> Tensor:
        out, state = self.rnn(self.embed(idx), None if cache is None else cache.state)  # (B, T, hidden)
        if cache is not None:
            cache.state = state
        return self.head(self.drop(out))  # (B, T, vocab)


for _cell, (_, _what) in CELLS.items():
    models.register(f"char_{_cell}", f"character-level language model: stacked {_what} layers, dropout",
                    config=CharRNNConfig, task=LANGUAGE)(partial(CharRNN, _cell))
