"""Choosing the next token from a model's logits."""
from __future__ import annotations

import torch
from torch import Tensor


def filter_logits(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> Tensor:
    """(B, V) logits scaled by 1/temperature, with -inf outside the support that top-k and top-p keep.

    top-k keeps the k most likely tokens; top-p (nucleus) keeps the fewest most likely tokens whose
    probabilities sum to at least p, after the temperature, as in Holtzman et al. 2019.
    """
    # the largest at 0 first (softmax does not change) and a temperature the dtype can hold: a tiny temperature
    # then gives large negative logits, never inf - inf or 0 / 0 = NaN
    logits = (logits - logits.amax(dim=-1, keepdim=True)) / max(temperature, torch.finfo(logits.dtype).tiny)
    if top_k is not None and top_k < logits.shape[-1]:
        values, index = logits.topk(top_k, dim=-1)  # exactly k, ties or not
        logits = torch.full_like(logits, float("-inf")).scatter(-1, index, values)
    if top_p is not None and top_p < 1.0:
        ranked, order = logits.sort(dim=-1, descending=True)
        probs = ranked.softmax(dim=-1)
        mass_above = probs.cumsum(dim=-1) - probs  # what the more likely tokens already cover; 0 for the top one
        dropped = mass_above >= top_p  # in rank order
        dropped = dropped.scatter(-1, order, dropped)  # in vocabulary order
        logits = logits.masked_fill(dropped, float("-inf"))
    return logits


def pick(logits: Tensor, temperature: float, top_k: int | None, top_p: float | None,
         generator: torch.Generator | None) -> Tensor:
    """(B, V) logits -> (B,) next tokens; temperature 0 is greedy (the most likely token)."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = filter_logits(logits, temperature, top_k, top_p).softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
