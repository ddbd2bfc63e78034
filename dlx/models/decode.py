"""Generation loops: feed the text so far to the model, choose the next token, append it, repeat.

A model's `forward(idx, cache)` reads new tokens into its cache (a GPT's keys and values, an RNN's
hidden state), so each step costs one token. A GPT sees at most `max_context` tokens: when the window
is full it slides, keeping the newest half and reading it again into a fresh cache. (Its positions
are absolute, so cached keys go stale once the window moves; sliding by half a window at a time costs
about two extra tokens per step instead of a whole window.) With use_cache=False the same windows are
recomputed in full at every step: the reference the cache must agree with, and the benchmark's baseline.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from dlx.models.sampling import pick


class Reader:
    """The tokens so far (B, T) and the model state that has read them."""

    def __init__(self, model: nn.Module, tokens: Tensor, use_cache: bool = True):
        self.model, self.tokens, self.use_cache = model, tokens, use_cache
        self.limit: int | None = model.max_context
        self.start = 0  # the window is tokens[:, start:]
        self.cache = model.new_cache() if use_cache else None
        self.read = 0  # tokens of the window already in the cache

    @torch.no_grad()
    def next_logits(self) -> Tensor:
        """(B, V) logits for the token after the current ones."""
        end = self.tokens.shape[1]
        if self.limit is not None and end - self.start > self.limit:
            self.start = end - (self.limit + 1) // 2
            self.cache, self.read = (self.model.new_cache() if self.use_cache else None), 0
        if self.cache is None:
            return self.model(self.tokens[:, self.start:])[:, -1]
        logits = self.model(self.tokens[:, self.start + self.read:], self.cache)[:, -1]
        self.read = end - self.start
        return logits

    def append(self, token: Tensor) -> None:
        self.tokens = torch.cat([self.tokens, token[:, None]], dim=1)

    def reorder(self, index: Tensor) -> None:
        self.tokens = self.tokens[index]
        if self.cache is not None:
            self.cache.reorder(index)


def sample(model: nn.Module, prompt: Tensor, steps: int, temperature: float = 1.0, top_k: int | None = None,
           top_p: float | None = None, generator: torch.Generator | None = None,
           use_cache: bool = True) -> Iterator[int]:
    """The ids of `steps` new tokens after a (T,) prompt, one at a time as they are chosen."""
    reader = Reader(model, prompt[None], use_cache)
    for _ in range(steps):
        token = pick(reader.next_logits(), temperature, top_k, top_p, generator)  # (1,)
        reader.append(token)
        yield int(token)


@torch.no_grad()
def beam_search(model: nn.Module, prompt: Tensor, steps: int, width: int) -> tuple[Tensor, float]:
    """The most likely continuation found keeping `width` candidates: (steps,) ids and its log-probability."""
    reader = Reader(model, prompt[None].repeat(width, 1))
    scores = torch.full((width,), float("-inf"), device=prompt.device)
    scores[0] = 0.0  # the beams start identical: only one may expand, or the first step picks duplicates
    for _ in range(steps):
        logp = reader.next_logits().log_softmax(dim=-1)  # (W, V)
        vocab = logp.shape[-1]
        scores, flat = (scores[:, None] + logp).flatten().topk(width)  # the best W of all W*V extensions
        reader.reorder(flat // vocab)
        reader.append(flat % vocab)
    return reader.tokens[0, len(prompt):], float(scores[0])
