"""Decoding an encoder-decoder (see dlx.models.encoder_decoder for the protocol): greedy, for a batch or streamed
token by token, and beam search; each keeps the attention weights of every output token for the heat map."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dlx.data.sequence_pairs import BOS_ID, EOS_ID


def _greedy_steps(model: nn.Module, src: Tensor, steps: int) -> Iterator[tuple[Tensor, Tensor | None]]:
    """(B, S) sources -> for each of `steps` steps, the (B,) most likely tokens and their (B, S) attention."""
    state = model.encode(src)
    token = torch.full((len(src),), BOS_ID, dtype=torch.long, device=src.device)
    for _ in range(steps):
        logits, weights = model.step(state, token)
        token = logits.argmax(dim=-1)
        yield token, weights


@torch.no_grad()
def greedy(model: nn.Module, src: Tensor, steps: int) -> Tensor:
    """(B, S) sources -> (B, steps) greedy outputs; always `steps` of them (what follows a </s> is never read), so a
    batch costs no device read per step."""
    return torch.stack([token for token, _ in _greedy_steps(model, src, steps)], dim=1)


@torch.no_grad()
def greedy_stream(model: nn.Module, src: Tensor, steps: int) -> Iterator[tuple[int, Tensor | None]]:
    """A (S,) source's greedy output, token by token with its (S,) attention, until </s> (not yielded) or `steps`."""
    for token, weights in _greedy_steps(model, src[None], steps):
        if int(token) == EOS_ID:
            return
        yield int(token), None if weights is None else weights[0]


@dataclass
class Beam:
    tokens: list[int]  # without <s> and </s>
    log_prob: float  # of the tokens and the </s> that ended them
    attention: Tensor | None  # (len(tokens), S)


@torch.no_grad()
def beam_search(model: nn.Module, src: Tensor, steps: int, width: int) -> Beam:
    """The most likely output found keeping `width` candidates. A candidate that emits </s> is finished; the search
    stops when the best finished one beats every open one (log-probabilities only fall as tokens are added) or
    after `steps` tokens, when open candidates count as they are."""
    state = model.encode(src[None].repeat(width, 1))
    scores = torch.full((width,), float("-inf"), device=src.device)
    scores[0] = 0.0  # the beams start identical: only one may expand, or the first step picks duplicates
    tokens = torch.full((width, 1), BOS_ID, dtype=torch.long, device=src.device)
    maps = torch.zeros(width, 0, src.shape[0], device=src.device)
    finished: list[Beam] = []
    for _ in range(steps):
        logits, weights = model.step(state, tokens[:, -1])
        logp = logits.log_softmax(dim=-1)  # (W, V)
        scores, flat = (scores[:, None] + logp).flatten().topk(width)  # the best W of all W*V extensions
        beam, token = flat // logp.shape[-1], flat % logp.shape[-1]
        state.reorder(beam)
        tokens = torch.cat([tokens[beam], token[:, None]], dim=1)
        if weights is not None:  # the weights of the old candidates, then kept as they were chosen
            maps = torch.cat([maps, weights[:, None]], dim=1)[beam]
        for i in (token == EOS_ID).nonzero().flatten().tolist():
            if torch.isfinite(scores[i]):
                finished.append(Beam(tokens[i, 1:-1].tolist(), float(scores[i]), _attention(maps[i, :-1], weights)))
        scores = scores.masked_fill(token == EOS_ID, float("-inf"))  # a finished candidate grows no further
        best_open = float(scores.max())
        if finished and max(b.log_prob for b in finished) >= best_open or best_open == float("-inf"):
            break
    else:
        i = int(scores.argmax())
        finished.append(Beam(tokens[i, 1:].tolist(), float(scores[i]), _attention(maps[i], weights)))
    return max(finished, key=lambda b: b.log_prob)


def _attention(rows: Tensor, weights: Tensor | None) -> Tensor | None:
    """A candidate's attention rows, or None for a model without attention."""
    return None if weights is None else rows.cpu()
