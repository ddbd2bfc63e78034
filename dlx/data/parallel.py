"""Your own parallel text: a file of `source<TAB>target` lines, the format of the sentence-pair collections
(Tatoeba's exports, the Anki files of manythings.org, whose third column, the attribution, is ignored)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from dlx.data.base import ArrayData
from dlx.data.corpora import read_text
from dlx.data.sequence_pairs import pair_data
from dlx.errors import DlxError
from dlx.paths import expanded
from dlx.registry import datasets


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """Every non-blank line as (source, target); a line without a TAB, or with an empty side, is a DlxError naming
    the line."""
    if not path.is_file():
        raise DlxError(f"data.path: {path} is no file")
    pairs = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        shown = line if len(line) <= 60 else f"{line[:57]}..."
        if len(fields) < 2:
            raise DlxError(f"{path}, line {number}: no TAB between a source and a target ({shown!r}); each line is "
                           f"source<TAB>target")
        source, target = fields[0].strip(), fields[1].strip()
        if not source or not target:
            side = "source" if not source else "target"
            raise DlxError(f"{path}, line {number}: the {side} is empty ({shown!r})")
        pairs.append((source, target))
    if not pairs:
        raise DlxError(f"{path}: no source<TAB>target lines")
    return pairs


@datasets.register("parallel_text", "seq2seq: your own file of source<TAB>target lines (Tatoeba/Anki sentence "
                                    "pairs), as characters")
def parallel_text(*, path: str, swap: bool = False, lowercase: bool = False,
                  max_length: Annotated[int, Field(ge=1)] | None = None,
                  max_pairs: Annotated[int, Field(ge=1)] | None = None) -> ArrayData:
    """swap: translate the second column into the first; max_length: keep the pairs whose sides both have at most this
    many characters; max_pairs: the first this many pairs (after max_length)."""
    pairs = read_pairs(expanded(path, "data.path"))
    if swap:
        pairs = [(t, s) for s, t in pairs]
    if lowercase:
        pairs = [(s.lower(), t.lower()) for s, t in pairs]
    if max_length is not None:
        pairs = [(s, t) for s, t in pairs if len(s) <= max_length and len(t) <= max_length]
        if not pairs:
            raise DlxError(f"data.max_length={max_length}: no pair of {path} is that short; raise it")
    return pair_data(pairs[:max_pairs], f"data.path: {path}")
