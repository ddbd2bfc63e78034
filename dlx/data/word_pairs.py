"""A word stream as the examples skip-gram and CBOW learn from, built as tensors an epoch at a time.

Skip-gram (Mikolov et al. 2013, as the notes define it): for each word w_t a window 1 <= L <= L_max is drawn at random
and the pairs (w_t, w_{t+-1..L}) are added; the input is the centre word, the target a context word. CBOW: the input is
the 2L words around w_t (a window of L on each side), the target w_t. Both inputs are (B, n) word ids, n = 1 for
skip-gram, so one model reads both: u = the mean of E over the n words.

An epoch is one pass over the train stream. Its frequent words are first thinned out (subsampling), then its examples
are made and shuffled, all from the epoch's random generator: a resumed epoch draws exactly the same examples.
Val and test are fixed: every word's full window (L = L_max) at evenly spaced centres, never subsampled.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor

from dlx.data.checks import require_memory
from dlx.data.text import TextCorpus, TextSplits, refuse_changed, text_spec, token_streams
from dlx.errors import DlxError

SKIPGRAM, CBOW = "skipgram", "cbow"


def keep_probabilities(counts: Tensor, threshold: float) -> Tensor:
    """The chance that each word of the vocabulary stays in an epoch's stream. Mikolov et al. 2013's formula as the
    paper writes it (section 2.3): a word of frequency f is discarded with probability 1 - sqrt(t / f), so words
    rarer than t are always kept (not the word2vec C code's variant, (sqrt(f / t) + 1) t / f). t = 0 keeps all."""
    if threshold == 0:
        return torch.ones(len(counts))
    frequency = counts.double() / counts.sum()
    return (threshold / frequency).sqrt().clamp(max=1.0).float()  # a word never seen: inf, clamped to 1


def examples(stream: Tensor, kind: str, window: int, reach: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(inputs (N, n), targets (N,)) of a stream. Skip-gram: centre word and context word, each word t taking the
    words within reach[t] of it (the window drawn for it; L_max when None). CBOW: the 2L words around each word that
    has L on either side, and the word."""
    positions = torch.arange(len(stream))
    offsets = torch.cat([torch.arange(-window, 0), torch.arange(1, window + 1)])  # (2L,)
    if kind == CBOW:
        centres = positions[window : len(stream) - window]
        return stream[centres[:, None] + offsets], stream[centres]
    around = positions[:, None] + offsets  # (T, 2L)
    valid = (around >= 0) & (around < len(stream))
    if reach is not None:
        valid &= offsets.abs() <= reach[:, None]
    centres = positions[:, None].expand_as(around)[valid]
    return stream[centres][:, None], stream[around[valid]]


def evenly_spaced(length: int, limit: int) -> Tensor:
    return torch.arange(min(length, limit)) * length // min(length, limit)


class PairEpochs:
    """One epoch = `steps` batches of a fresh draw of examples from the train stream: subsampled, windows drawn
    (skip-gram), shuffled. The number of examples varies from draw to draw; every epoch takes `steps` batches of them
    (steps x batch_size: the expected count, rounded), so the run's length and its schedule are known in advance."""

    def __init__(self, stream: Tensor, keep: Tensor, kind: str, window: int, batch_size: int, device: torch.device):
        self.stream, self.keep, self.kind, self.window = stream, keep, kind, window
        self.batch_size, self.device = batch_size, device
        kept = float(keep[stream].sum())
        expected = kept * (window + 1) if kind == SKIPGRAM else kept - 2 * window  # skip-gram: 2 E[L] per word
        self.steps = max(1, round(expected / batch_size))
        width = 1 if kind == SKIPGRAM else 2 * window
        require_memory(8 * 3 * len(stream) * (2 * window + 1) + 8 * (width + 1) * self.steps * batch_size,
                       f"an epoch's examples ({self.steps} batches of train.batch_size={batch_size})",
                       "use a shorter text or a smaller objective.window")

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.epoch(None)

    def epoch(self, generator: torch.Generator | None, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches of one epoch from batch `start` on; every draw comes from `generator`, in this order."""
        stream = self.stream[torch.rand(len(self.stream), generator=generator) < self.keep[self.stream]]
        reach = torch.randint(1, self.window + 1, (len(stream),), generator=generator) if self.kind == SKIPGRAM else None
        x, y = examples(stream, self.kind, self.window, reach)
        if not len(y):
            raise DlxError(f"objective.subsample left too few words of the train text in an epoch to make one "
                           f"{self.kind} example; lower it (0 keeps every word)")
        order = torch.randperm(len(y), generator=generator)
        taken = self.steps * self.batch_size
        order = order[torch.arange(start * self.batch_size, taken) % len(order)]  # a short draw wraps round
        x, y = x[order].to(self.device), y[order].to(self.device)
        for i in range(0, len(y), self.batch_size):
            yield x[i : i + self.batch_size], y[i : i + self.batch_size]


@dataclass
class PairSplits(TextSplits):
    """Splits of a word stream as skip-gram or CBOW examples: `parts` hold the fixed val/test (and train) examples,
    `streams` the token streams (on the CPU, where an epoch's examples are drawn)."""

    kind: str = SKIPGRAM
    window: int = 5
    keep: Tensor = field(default_factory=lambda: torch.ones(0))  # (V,) each word's chance to stay in an epoch
    device: torch.device = torch.device("cpu")

    def batches(self, split: str, batch_size: int, shuffle: bool = False):
        if shuffle:
            return PairEpochs(self.streams[split], self.keep, self.kind, self.window, batch_size, self.device)
        return super().batches(split, batch_size)

    @property
    def counts(self) -> Tensor:
        """(V,) how often each word occurs in the train stream."""
        return torch.bincount(self.streams["train"], minlength=self.spec.num_classes)


def pair_splits(corpus: TextCorpus, fractions: tuple[float, float, float], device: torch.device, kind: str,
                window: int, subsample: float) -> PairSplits:
    """The text's words, cut into contiguous train / val / test streams, as skip-gram or CBOW examples."""
    refuse_changed(corpus.windows, ("block_size", "steps_per_epoch"), f"shapes a language model's windows; objective "
                   f"'{kind}' learns from word pairs (objective.window, and an epoch is a pass over the text)")
    vocab, streams = token_streams(corpus, fractions, 2 * window, f"twice objective.window={window}")
    parts = {}
    for split, stream in streams.items():
        x, y = examples(stream, kind, window)
        centres = evenly_spaced(len(y) if kind == CBOW else len(stream), corpus.windows.eval_windows)
        if kind == SKIPGRAM:  # every pair of the chosen centres
            centres = torch.nonzero(torch.isin(_centre_positions(stream, window), centres)).flatten()
        parts[split] = (x[centres].to(device), y[centres].to(device))
    counts = torch.bincount(streams["train"], minlength=len(vocab))
    spec = text_spec(vocab, (1,) if kind == SKIPGRAM else (2 * window,))
    return PairSplits(spec, parts, streams=streams, kind=kind, window=window, keep=keep_probabilities(counts, subsample),
                      device=device)


def _centre_positions(stream: Tensor, window: int) -> Tensor:
    """The centre's position in the stream of each skip-gram pair `examples` makes with the full window."""
    return examples(torch.arange(len(stream)), SKIPGRAM, window)[0].flatten()
