"""A CSV table streamed from disk: one pass finds each row's byte offset, the columns' kinds and their words; then a
row is one seek and one line, encoded as the in-memory `csv` dataset encodes it (numbers as they are, words one-hot
over the column's words in the same order), so a streamed table trains on the same features."""
from __future__ import annotations

import csv as csvlib
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlx.data.base import REGRESSION, Column
from dlx.data.files import _levels, _number, checked_header
from dlx.data.stream import StreamData
from dlx.errors import DlxError

MAX_WORDS = 10_000  # distinct words of one feature column: each is a one-hot input


def _fields(line: bytes, file: Path, number: int, delimiter: str) -> list[str]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DlxError(f"data.path: {file} is not UTF-8 text (byte 0x{e.object[e.start]:02x} on line {number}); "
                       f"convert it, e.g. iconv -f latin1 -t utf-8") from None
    try:
        row = next(csvlib.reader([text.removeprefix("\ufeff").rstrip("\r\n")], delimiter=delimiter, strict=True))
        return [f.strip() for f in row]
    except (csvlib.Error, StopIteration) as e:
        raise DlxError(f"data.path: {file} line {number}: {e or 'no fields'} (a streamed table takes one row per "
                       f"line: a quoted field may not span lines)") from None


@dataclass(frozen=True)
class TableRows:
    """A CSV file's data rows by byte offset, encoded as float32 features when read."""

    file: str
    offsets: array
    header: list[str]
    target: int
    delimiter: str
    words: dict[int, dict[str, int]]  # a word column's index -> each word's one-hot position

    @property
    def in_shape(self) -> tuple[int]:
        widths = [len(self.words[c]) if c in self.words else 1 for c in range(len(self.header)) if c != self.target]
        return (sum(widths),)

    def __len__(self) -> int:
        return len(self.offsets)

    def read(self, i: int) -> np.ndarray:
        with open(self.file, "rb") as f:
            f.seek(self.offsets[i])
            line = f.readline()
        fields = _fields(line, Path(self.file), i + 2, self.delimiter)
        try:
            features = [self._encoded(c, value) for c, value in enumerate(fields) if c != self.target]
            if len(fields) != len(self.header):
                raise ValueError(f"{len(fields)} fields")
        except (KeyError, ValueError) as e:
            raise DlxError(f"data.path: {self.file} changed while it was read (data row {i + 1}: {e} is not what the "
                           f"first pass found); start the run again") from None
        return np.concatenate(features)

    def _encoded(self, column: int, value: str) -> np.ndarray:
        if column not in self.words:
            return np.array([float(value)], dtype=np.float32)
        one_hot = np.zeros(len(self.words[column]), dtype=np.float32)
        one_hot[self.words[column][value]] = 1.0
        return one_hot


def stream_csv(file: Path, target: str, task: str, delimiter: str) -> StreamData:
    """One pass over the file: offsets, each column's kind and words, the target's values; every cell is checked
    as the in-memory csv checks it, naming its line."""
    offsets = array("q")
    header: list[str] = []
    numeric: list[bool] = []
    words: list[set[str]] = []
    targets: list[str] = []
    with file.open("rb") as f:
        position = 0
        for number, line in enumerate(f, start=1):
            start, position = position, position + len(line)
            if not line.strip():
                continue
            fields = _fields(line, file, number, delimiter)
            if not header:
                header = checked_header(fields, target, file)
                numeric, words = [True] * len(header), [set() for _ in header]
                continue
            if len(fields) != len(header):
                raise DlxError(f"data.path: {file} line {number} has {len(fields)} fields, the header has {len(header)}")
            for c, value in enumerate(fields):
                if not value:
                    raise DlxError(f"data.path: {file} line {number} has an empty cell in column '{header[c]}'; fill "
                                   f"it or drop the row")
                parsed = _number(value)
                with np.errstate(over="ignore"):  # a number beyond float32 is refused below, not warned about
                    finite = parsed is None or np.isfinite(np.float32(parsed))
                if not finite:
                    raise DlxError(f"data.path: {file} line {number}, column '{header[c]}': {value!r} is not a "
                                   f"finite 32-bit number; dlx cannot train on NaN or infinite values")
                numeric[c] = numeric[c] and parsed is not None
                if len(words[c]) <= MAX_WORDS:
                    words[c].add(value)
            offsets.append(start)
            targets.append(fields[header.index(target)])
    if not offsets:
        raise DlxError(f"data.path: {file} needs a header row and at least one row of data")
    t = header.index(target)
    too_many = next((c for c in range(len(header)) if c != t and not numeric[c] and len(words[c]) > MAX_WORDS), None)
    if too_many is not None:
        raise DlxError(f"data.path: {file}: column '{header[too_many]}' holds more than {MAX_WORDS:,} distinct words, "
                       f"too many to one-hot encode; drop it or give it as numbers")
    encoded = {c: {w: i for i, w in enumerate(_levels(list(words[c]))[1])}
               for c in range(len(header)) if c != t and not numeric[c]}
    rows = TableRows(str(file), offsets, header, t, delimiter, encoded)
    columns = tuple(Column(name, tuple(encoded[c]) if c in encoded else ()) for c, name in enumerate(header) if c != t)
    source = f"data.path: {file}"
    distinct = words[t] if len(words[t]) <= MAX_WORDS else set()
    classes = task == "classification" or (task == "auto" and (not numeric[t] or (
        0 < len(distinct) <= 20 and all(float(v) == round(float(v)) for v in distinct))))
    if classes:
        levels = _levels(targets)[1]
        index = {v: i for i, v in enumerate(levels)}
        y = torch.tensor([index[v] for v in targets])
        return StreamData(rows, y, tuple(levels), source=source, columns=columns, target=target)
    if not numeric[t]:
        raise DlxError(f"data.target: column '{target}' holds words, which cannot be regression targets")
    y = torch.tensor([float(v) for v in targets], dtype=torch.float32)[:, None]
    return StreamData(rows, y, (), source=source, task=REGRESSION, columns=columns, target=target)

