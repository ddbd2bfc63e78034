"""Sequence pairs for encoder-decoders: a source string and its target string, as padded tensors of token ids.

Tokens are characters. Each side has its own vocabulary, three special tokens first: <pad> fills a sequence up to
the longest one's length (and is ignored by the loss and the metrics), <s> starts the decoder's input and </s> ends
the target, so a decoder learns where to stop. A pair becomes x = the source's ids (padded) and y = <s>, the target's
ids, </s> (padded): the decoder reads y[:, :-1] and is trained to predict y[:, 1:]. The vocabularies travel in the
data spec (checkpoints) and in the run's vocab.json, so generate and evaluate need no data to read a run.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from dlx.data.base import SEQ2SEQ, ArrayData, DataSpec
from dlx.data.checks import require_memory
from dlx.errors import DlxError

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
SPECIALS = (PAD, BOS, EOS)
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2


class TokenVocab:
    """The special tokens, then the characters of a side of the pairs in code-point order; a token's id is its index."""

    def __init__(self, tokens: Sequence[str]):
        self.tokens = tuple(tokens)
        self.ids = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def of(cls, texts: Iterable[str]) -> TokenVocab:
        return cls((*SPECIALS, *sorted(set().union(*map(set, texts)))))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, what: str) -> list[int]:
        """'abc' -> its ids; characters the vocabulary lacks are a DlxError naming them and `what` was read."""
        try:
            return [self.ids[c] for c in text]
        except KeyError:
            missing = sorted({c for c in text if c not in self.ids})
            raise DlxError(f"{what}: characters not in the model's vocabulary: {', '.join(map(repr, missing))}; it "
                           f"knows {len(self) - len(SPECIALS)} characters (see vocab.json in the run folder)") from None

    def decode(self, ids: Iterable[int]) -> str:
        """The characters up to the first </s>, without padding or <s>."""
        chars = []
        for i in ids:
            if i == EOS_ID:
                break
            if i >= len(SPECIALS):
                chars.append(self.tokens[i])
        return "".join(chars)


def vocabularies(spec: DataSpec) -> tuple[TokenVocab, TokenVocab]:
    """(source, target) vocabularies of a seq2seq run's data spec."""
    return TokenVocab(spec.source_names), TokenVocab(spec.class_names)


def vocab_json(spec: DataSpec) -> str:
    return json.dumps({"source": list(spec.source_names), "target": list(spec.class_names)}, ensure_ascii=False, indent=1)


def padded(rows: list[list[int]]) -> Tensor:
    """Rows of different lengths -> (N, longest) int64, filled with <pad>."""
    out = torch.full((len(rows), max(map(len, rows))), PAD_ID, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def pair_data(pairs: list[tuple[str, str]], source: str) -> ArrayData:
    """(source, target) strings -> ArrayData of padded ids, x (N, S) and y (N, T + 2), with both vocabularies."""
    if not pairs:
        raise DlxError(f"{source}: no pairs to learn from")
    longest = max(len(s) for s, _ in pairs) + max(len(t) for _, t in pairs) + 2
    require_memory(8 * len(pairs) * longest, f"{source}: {len(pairs)} pairs of up to {longest} tokens",
                   "use fewer or shorter pairs")
    src_vocab, tgt_vocab = TokenVocab.of(s for s, _ in pairs), TokenVocab.of(t for _, t in pairs)
    x = padded([src_vocab.encode(s, source) for s, _ in pairs])
    y = padded([[BOS_ID, *tgt_vocab.encode(t, source), EOS_ID] for _, t in pairs])
    return ArrayData(x, y, SEQ2SEQ, class_names=tgt_vocab.tokens, source=source, source_names=src_vocab.tokens)


def reencoded(ids: Tensor, tokens: Sequence[str], vocab: TokenVocab, what: str) -> Tensor:
    """Ids over `tokens` (another dataset's vocabulary) as ids of `vocab` (a trained run's); characters `vocab` lacks
    are a DlxError naming them."""
    missing = sorted(t for t in tokens if t not in vocab.ids)
    if missing:
        raise DlxError(f"{what}: characters not in the model's vocabulary: {', '.join(map(repr, missing))}")
    table = torch.tensor([vocab.ids[t] for t in tokens], dtype=torch.long, device=ids.device)
    return table[ids]


def source_lengths(x: Tensor) -> Tensor:
    """(N, S) padded sources -> (N,) their lengths."""
    return (x != PAD_ID).sum(dim=1)
