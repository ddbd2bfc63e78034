"""Word-level text: a tokenizer and a vocabulary of the most frequent words, with <unk> for the rest.

Words are lower-cased; punctuation marks become tokens of their own ("king's," -> "king's", ","), so "love" and
"love," are one word. A word seen fewer than `min_count` times, or beyond the `max_vocab` most frequent, is <unk>:
rare words have too few contexts to learn a vector from, and every word kept costs a row in each embedding table.
"""
from __future__ import annotations

import json
import re
from collections import Counter

import torch
from torch import Tensor

from dlx.errors import DlxError

TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")  # a word (with inner apostrophes: o'er, king's) or one punctuation mark
UNKNOWN = "<unk>"


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


class WordVocab:
    """<unk> first, then the words from the most frequent down (ties in alphabetical order); a word's id is its
    position, so ids 1, 2, ... are the most frequent words."""

    unit = "words"
    tokenizer = "words"

    def __init__(self, tokens: tuple[str, ...] | list[str]):
        self.tokens = tuple(tokens)
        self._ids = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def of(cls, words: list[str], min_count: int, max_vocab: int) -> WordVocab:
        counts = Counter(words)
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls((UNKNOWN, *kept[: max_vocab - 1]))

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def default_prompt(self) -> str:
        """Where generation starts when no prompt is given: the most frequent word."""
        return self.tokens[1] if len(self.tokens) > 1 else UNKNOWN

    def id(self, word: str) -> int | None:
        """A word's id, None for a word outside the vocabulary."""
        return self._ids.get(word.lower())

    def unknown(self, text: str) -> list[str]:
        """The words of `text` outside the vocabulary, each once, in order: what encode reads as <unk>."""
        return list(dict.fromkeys(w for w in tokenize(text) if w not in self._ids))

    def encode_words(self, words: list[str]) -> Tensor:
        return torch.tensor([self._ids.get(w, 0) for w in words], dtype=torch.int64)

    def encode(self, text: str) -> Tensor:
        """'The king.' -> (3,) int64 ids; words outside the vocabulary are <unk> (id 0)."""
        return self.encode_words(tokenize(text))

    def piece(self, token: int) -> str:
        """How a token reads after the text before it: a word after a space, a punctuation mark without one."""
        word = self.tokens[token]
        mark = len(word) == 1 and not (word.isalnum() or word == "_")  # the tokenizer makes marks single characters
        return word if mark else " " + word

    def decode(self, ids: Tensor | list[int]) -> str:
        return "".join(self.piece(i) for i in torch.as_tensor(ids).tolist())

    def to_json(self) -> str:
        return json.dumps({"tokenizer": self.tokenizer, "tokens": list(self.tokens)}, ensure_ascii=False, indent=1)


def word_vocab(text: str, min_count: int, max_vocab: int, source: str) -> tuple[WordVocab, list[str]]:
    """The vocabulary of a text and its words; a text with no word kept is a clear error."""
    words = tokenize(text)
    vocab = WordVocab.of(words, min_count, max_vocab)
    if len(vocab) < 2:
        raise DlxError(f"{source}: no word occurs data.min_count={min_count} times ({len(words)} words in all); "
                       f"lower data.min_count or use a longer text")
    return vocab, words
