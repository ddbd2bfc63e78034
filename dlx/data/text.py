"""Text as tokens (characters, or words with data.tokenizer: words): a vocabulary, one long stream of token ids, and
random windows of it.

A text is not a table of examples: a training batch is B windows of block_size characters cut at
random places of the train stream (the target is the window shifted by one character), and an
"epoch" is a fixed number of such batches. The text is split into train / val / test as contiguous
blocks, in that order, so no window of val text was ever seen in training. Val and test are measured
on fixed, evenly spaced windows, so every evaluation sees the same characters.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from dlx.data.base import LANGUAGE, Batches, DataSpec, Splits
from dlx.data.checks import require_memory
from dlx.data.words import WordVocab, word_vocab
from dlx.errors import DlxError


class Vocab:
    """The characters of a corpus, sorted by code point; a character's id is its position."""

    unit = "characters"
    tokenizer = "chars"

    def __init__(self, chars: tuple[str, ...] | list[str]):
        self.chars = tuple(chars)
        self._codes = np.array([ord(c) for c in self.chars], dtype=np.int64)  # sorted: looked up by bisection

    @classmethod
    def of(cls, text: str) -> Vocab:
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def default_prompt(self) -> str:
        """Where generation starts when no prompt is given: a new line, if the text has lines."""
        return "\n" if "\n" in self.chars else self.chars[0]

    def encode(self, text: str) -> Tensor:
        """'abc' -> (3,) int64 ids; characters outside the vocabulary are a DlxError naming them."""
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        ids = np.searchsorted(self._codes, points).clip(max=max(len(self._codes) - 1, 0))
        unknown = points != self._codes[ids] if len(self._codes) else np.ones(len(points), dtype=bool)
        if unknown.any():
            missing = sorted({chr(p) for p in points[unknown]})
            raise DlxError(f"characters not in the model's vocabulary: {', '.join(map(repr, missing))}; "
                           f"the model knows {len(self)} characters (see vocab.json in the run folder)")
        return torch.from_numpy(ids)

    @property
    def tokens(self) -> tuple[str, ...]:
        return self.chars

    def piece(self, token: int) -> str:
        """How a token reads after the text before it."""
        return self.chars[token]

    def decode(self, ids: Tensor | list[int]) -> str:
        return "".join(self.chars[i] for i in torch.as_tensor(ids).tolist())

    def to_json(self) -> str:
        return json.dumps({"chars": list(self.chars)}, ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Vocab:
        return cls(json.loads(text)["chars"])


def vocab_of(spec: DataSpec) -> Vocab | WordVocab:
    """A text run's vocabulary, as its data spec (in every checkpoint) records it."""
    return WordVocab(spec.class_names) if spec.tokenizer == "words" else Vocab(spec.class_names)


@dataclass(kw_only=True)
class Windows:
    """How a text becomes tokens and batches; every text dataset has these settings."""

    # chars: every character is a token; words: lower-cased words, punctuation marks as tokens of their own
    tokenizer: Literal["chars", "words"] = "chars"
    min_count: Annotated[int, Field(ge=1)] = 5  # words: rarer words become <unk>
    max_vocab: Annotated[int, Field(ge=2, le=10_000_000)] = 20_000  # words: at most this many tokens, <unk> included

    block_size: Annotated[int, Field(ge=1, le=1_000_000)] = 128  # characters per window: the longest dependency a model can learn
    # random windows never run out: an epoch is this many batches (their offsets are drawn at the epoch's start)
    steps_per_epoch: Annotated[int, Field(ge=1, le=1_000_000)] = 200
    eval_windows: Annotated[int, Field(ge=1, le=1_000_000)] = 512  # val/test loss over at most this many evenly spaced windows


@dataclass
class TextCorpus:
    """What a text dataset returns: the whole text and its window settings."""

    text: str
    windows: Windows
    source: str  # where the text came from, for messages


class RandomWindows:
    """One epoch = `steps` batches of (B, T) windows at random offsets of a token stream."""

    def __init__(self, stream: Tensor, block_size: int, batch_size: int, steps: int):
        self.stream, self.block_size, self.batch_size, self.steps = stream, block_size, batch_size, steps
        self.offsets = torch.arange(block_size, device=stream.device)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.epoch(None)

    def epoch(self, generator: torch.Generator | None, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        # the whole epoch's offsets are drawn at once, so a resumed epoch replays them and skips `start`
        starts = torch.randint(len(self.stream) - self.block_size, (self.steps, self.batch_size), generator=generator)
        for row in starts[start:].to(self.stream.device):
            index = row[:, None] + self.offsets  # (B, T)
            yield self.stream[index], self.stream[index + 1]


def fixed_windows(stream: Tensor, block_size: int, limit: int) -> tuple[Tensor, Tensor]:
    """Up to `limit` non-overlapping windows spread evenly over the stream: (N, T) inputs and targets."""
    n = (len(stream) - 1) // block_size
    k = min(n, limit)
    starts = (torch.arange(k) * n // k) * block_size
    index = starts.to(stream.device)[:, None] + torch.arange(block_size, device=stream.device)
    return stream[index], stream[index + 1]


@dataclass
class TextSplits(Splits):
    """Splits of a text: `parts` hold the fixed evaluation windows, `streams` the token streams."""

    streams: dict[str, Tensor] = field(default_factory=dict)
    steps_per_epoch: int = 200

    @property
    def vocab(self) -> Vocab | WordVocab:
        return vocab_of(self.spec)

    def batches(self, split: str, batch_size: int, shuffle: bool = False) -> Batches | RandomWindows:
        if shuffle:  # an epoch's offsets (steps, B) at once, and one batch of inputs and targets (B, T) each
            block = self.spec.in_shape[0]
            require_memory(8 * batch_size * (self.steps_per_epoch + 2 * block),
                           f"data.steps_per_epoch={self.steps_per_epoch} batches of train.batch_size={batch_size} "
                           f"windows of data.block_size={block}", "lower one of them")
            return RandomWindows(self.streams[split], self.spec.in_shape[0], batch_size, self.steps_per_epoch)
        return super().batches(split, batch_size)


def refuse_changed(settings: Windows, names: tuple[str, ...], why: str) -> None:
    """A DlxError naming the first of these settings that differs from its default: it would be ignored, and a value
    the user typed is never ignored in silence."""
    defaults = {f.name: f.default for f in fields(Windows)}
    changed = [name for name in names if getattr(settings, name) != defaults[name]]
    if changed:
        raise DlxError(f"data.{changed[0]}={getattr(settings, changed[0])} {why}")


def tokens(corpus: TextCorpus) -> tuple[Vocab | WordVocab, Tensor]:
    """The text's vocabulary, by data.tokenizer, and the text as a stream of its ids."""
    settings = corpus.windows
    if settings.tokenizer == "words":
        vocab, words = word_vocab(corpus.text, settings.min_count, settings.max_vocab, corpus.source)
        return vocab, vocab.encode_words(words)
    refuse_changed(settings, ("min_count", "max_vocab"), "applies to words; set data.tokenizer=words or leave it out")
    vocab = Vocab.of(corpus.text)
    if len(vocab) < 2:  # nothing to predict: the loss reaches 0 learning nothing
        raise DlxError(f"{corpus.source}: the text is one character ({corpus.text[0]!r}) repeated; a language model "
                       f"needs at least two distinct characters")
    return vocab, vocab.encode(corpus.text)


def token_streams(corpus: TextCorpus, fractions: tuple[float, float, float], shortest: int, setting: str,
                  ) -> tuple[Vocab | WordVocab, dict[str, Tensor]]:
    """The vocabulary and the train / val / test token streams, contiguous blocks in that order; each must hold more
    than `shortest` tokens (the `setting` that asks for them, named in the error)."""
    if not corpus.text:
        raise DlxError(f"{corpus.source}: the text is empty")
    vocab, ids = tokens(corpus)
    total = sum(fractions)
    n_val, n_test = (round(len(ids) * f / total) for f in fractions[1:])
    streams = dict(zip(("train", "val", "test"), ids.split([len(ids) - n_val - n_test, n_val, n_test])))
    for split, stream in streams.items():
        if len(stream) <= shortest:
            raise DlxError(f"{corpus.source}: the {split} part has {len(stream)} {vocab.unit}, not more than "
                           f"{shortest} ({setting}); use a longer text, a smaller setting or another data.split")
    return vocab, streams


def text_spec(vocab: Vocab | WordVocab, in_shape: tuple[int, ...]) -> DataSpec:
    return DataSpec(in_shape, LANGUAGE, num_classes=len(vocab), class_names=vocab.tokens, tokenizer=vocab.tokenizer)


def text_splits(corpus: TextCorpus, fractions: tuple[float, float, float], device: torch.device) -> TextSplits:
    """Encode the text, cut it into contiguous train / val / test blocks, and fix the evaluation windows."""
    block = corpus.windows.block_size
    vocab, streams = token_streams(corpus, fractions, block, f"data.block_size={block}")
    streams = {k: s.to(device) for k, s in streams.items()}
    parts = {k: fixed_windows(s, block, corpus.windows.eval_windows) for k, s in streams.items()}
    return TextSplits(text_spec(vocab, (block,)), parts, streams=streams, steps_per_epoch=corpus.windows.steps_per_epoch)


def vocab_size(spec: DataSpec, model: str) -> int:
    """The vocabulary a language model predicts over; any other data is a clear error."""
    if spec.task != LANGUAGE:
        raise DlxError(f"model '{model}' is a language model: it needs text data (data.name: text, tinyshakespeare "
                       f"or python_stdlib), but this dataset is {spec.task}")
    return spec.num_classes
