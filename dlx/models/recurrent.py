"""Recurrent nets for sequences (B, T, F): vanilla RNN h_t = tanh(W h_{t-1} + U x_t + b), LSTM and GRU.

Stacked and bidirectional. `output` says what the dense head reads: the final hidden state
(sequence classification), the mean over time, or every step (one prediction per step, e.g. a
running sum). Recurrent weights keep PyTorch's initialisation, U(+-1/sqrt(hidden)).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from dlx.data.base import CLASSIFICATION, DataSpec
from dlx.models.init import initialize
from dlx.models.checks import classifier_outputs, sequence_shape
from dlx.models.mlp import Dropout
from dlx.registry import models

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


@dataclass
class RecurrentConfig:
    hidden: Annotated[int, Field(ge=1, le=65536)] = 64  # units per layer and direction
    layers: Annotated[int, Field(ge=1, le=64)] = 1  # stacked recurrent layers
    bidirectional: bool = False
    dropout: Dropout = 0.0  # between stacked layers
    output: Literal["last", "mean", "steps"] = "last"  # last hidden state, mean over time, or a prediction per step


@dataclass
class RNNConfig(RecurrentConfig):
    nonlinearity: Literal["tanh", "relu"] = "tanh"


class Recurrent(nn.Module):
    def __init__(self, spec: DataSpec, config: RecurrentConfig, cell: str):
        super().__init__()
        features = sequence_shape(spec, cell)[1]
        extra = {"nonlinearity": config.nonlinearity} if isinstance(config, RNNConfig) else {}
        self.rnn = CELLS[cell](features, config.hidden, num_layers=config.layers, batch_first=True,
                               bidirectional=config.bidirectional,
                               dropout=config.dropout if config.layers > 1 else 0.0, **extra)
        self.directions = 2 if config.bidirectional else 1
        self.output, self.classify = config.output, spec.task == CLASSIFICATION
        self.head = nn.Linear(self.directions * config.hidden, classifier_outputs(spec, cell))
        initialize(self.head, "auto", "identity")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, state = self.rnn(x)  # out: (B, T, D*H) of the last layer; state: (layers*D, B, H)
        if self.output == "steps":
            y = self.head(out)  # (B, T, outputs)
            return y.transpose(1, 2) if self.classify else y  # classes second, (B, C, T), as cross-entropy wants
        if self.output == "mean":
            return self.head(out.mean(dim=1))  # (B, D*H) -> (B, outputs)
        h = state[0] if isinstance(state, tuple) else state  # an LSTM's state is (h, c)
        last = h[-self.directions:].transpose(0, 1)  # final states of the top layer, both directions: (B, D, H)
        return self.head(last.flatten(1))  # (B, D*H) -> (B, outputs)


for _cell, _config, _what in [("rnn", RNNConfig, "vanilla RNN (tanh or ReLU)"), ("lstm", RecurrentConfig, "LSTM"),
                              ("gru", RecurrentConfig, "GRU")]:
    models.register(_cell, f"{_what} on sequences (T, F): stacked, bidirectional; output last | mean | steps",
                    config=_config, inputs="sequence")(partial(Recurrent, cell=_cell))
