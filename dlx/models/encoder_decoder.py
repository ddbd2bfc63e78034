"""The protocol every encoder-decoder keeps, so that training, greedy and beam search and the attention heat map
serve the recurrent and the transformer models alike:

    model(src, tgt_in, teacher_forcing)  (B, S), (B, T) ids -> (B, T, V) logits, training and validation
    state = model.encode(src)            reads the source once
    logits, weights = model.step(state, token)   (B,) previous tokens -> (B, V) logits of the next, (B, S) attention
                                                  (None without attention); the state moves on by one token
    state.reorder(index)                 keeps sequence index[i] as sequence i (beam search)
    model.has_attention, model.max_length  whether step() returns weights; the longest sequence (None: any)
"""
from __future__ import annotations

import torch
from torch import Tensor

from dlx.data.base import SEQ2SEQ, DataSpec
from dlx.errors import DlxError


class DecoderState:
    """What a decoder carries from one output token to the next: tensors (or tuples of them) with the batch first."""

    def __init__(self, **parts: Tensor | tuple[Tensor, ...]):
        self.__dict__.update(parts)

    def reorder(self, index: Tensor) -> None:
        for name, part in vars(self).items():
            setattr(self, name, tuple(p[index] for p in part) if isinstance(part, tuple) else part[index])


def vocab_sizes(spec: DataSpec, model: str) -> tuple[int, int]:
    """(source, target) vocabulary sizes; other data is a clear error."""
    if spec.task != SEQ2SEQ:
        raise DlxError(f"model '{model}' is an encoder-decoder: it needs pairs of sequences (data.name: reverse, "
                       f"sort_digits, addition, dates or parallel_text), but this dataset is {spec.task}")
    return len(spec.source_names), spec.num_classes


def teacher_forced(gold: Tensor, teacher_forcing: float) -> Tensor:
    """Scheduled sampling (Bengio et al. 2015): which decoder inputs (B, T) are the true previous token (True, with
    probability `teacher_forcing`) and which the model's own prediction of it. The first input, <s>, is always given.
    Drawn from the run's random state, so a resumed run draws the same."""
    fed = torch.rand(gold.shape, device=gold.device) < teacher_forcing
    fed[:, 0] = True
    return fed
