"""Attention for recurrent encoder-decoders: a decoder state (the query) scores every encoder state h_j, the scores
become weights alpha_j by a softmax over the source, and the context c = sum_j alpha_j h_j is their weighted mean.

The encoder states' part of each score does not depend on the query, so it is computed once per source (`keys`)
and reused at every output step. Padding positions get no weight.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


def attend(scores: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """scores (B, S), memory (B, S, K), mask (B, S) True at real tokens -> context (B, K), weights (B, S)."""
    weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)  # alpha_i = softmax(e_i) over the source
    return torch.bmm(weights[:, None], memory).squeeze(1), weights  # c_i = sum_j alpha_ij h_j


class AdditiveAttention(nn.Module):
    """Bahdanau et al. 2014, as the course writes it: e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j)."""

    def __init__(self, query: int, memory: int, width: int):
        super().__init__()
        self.w_a = nn.Linear(query, width, bias=False)
        self.u_a = nn.Linear(memory, width, bias=False)
        self.v_a = nn.Linear(width, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return self.u_a(memory)  # U_a h_j for every j: (B, S, width)

    def forward(self, query: Tensor, memory: Tensor, keys: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        scores = self.v_a(torch.tanh(self.w_a(query)[:, None] + keys)).squeeze(-1)  # (B, S)
        return attend(scores, memory, mask)


class MultiplicativeAttention(nn.Module):
    """Luong et al. 2015, the 'general' score: e_ij = s_i^T W_a h_j, with the decoder's current state s_i."""

    def __init__(self, query: int, memory: int):
        super().__init__()
        self.w_a = nn.Linear(memory, query, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return self.w_a(memory)  # W_a h_j for every j: (B, S, query)

    def forward(self, query: Tensor, memory: Tensor, keys: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        scores = torch.bmm(keys, query[:, :, None]).squeeze(-1)  # (B, S)
        return attend(scores, memory, mask)
