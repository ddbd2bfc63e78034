"""What `dlx predict` reads, as a run's data takes it: image files (named, in folders or by glob), CSV tables with the
run's columns, and .npz/.pt arrays. Each becomes raw model inputs (as the run's dataset holds its samples, before
standardisation) in batches; images are read a batch at a time, so thousands never sit in memory at once."""
from __future__ import annotations

import csv as csvlib
import glob
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dlx.data.base import CLASSIFICATION, Column, DataSpec
from dlx.data.files import load_arrays
from dlx.data.images import IMAGE_SUFFIXES, read_pixels
from dlx.errors import DlxError
from dlx.paths import expanded

TABLE_SUFFIXES = {".csv"}
ARRAY_SUFFIXES = {".npz", ".pt"}


@dataclass
class Batch:
    names: list[str]  # each input's file, or file:row for a row of a table or an array
    x: Tensor  # (n, *in_shape), raw: not standardised
    targets: list[str] | None = None  # the true answer where the input carries one (a CSV's target column, an array's y)


@dataclass
class Table:
    """The run's table columns, for reading a CSV: the features in the order of the model's inputs, and the target."""

    columns: tuple[Column, ...]
    target: str


@dataclass
class Loaded:
    """A table or an array file, read whole (they are read whole for training too)."""

    name: str
    x: Tensor
    targets: list[str] | None


@dataclass
class Inputs:
    """The inputs named on the command line, expanded: image files one by one, tables and arrays already read.
    With `skip_bad`, a file that cannot be read goes to `bad` (file, reason) instead of ending the command."""

    spec: DataSpec
    table: Callable[[], Table] | None = None  # the run's columns, found only when a CSV table is given
    skip_bad: bool = False
    parts: list[Path | Loaded] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)

    def add(self, texts: list[str]) -> Inputs:
        for text in texts:
            for path in self._expand(text):
                self._guard(str(path), lambda: self.parts.append(self._part(path)))
        if not self.parts and not self.bad:
            raise DlxError("no inputs to predict: give image files, folders, globs, CSV tables or .npz/.pt arrays")
        return self

    @property
    def has_targets(self) -> bool:
        return any(isinstance(p, Loaded) and p.targets is not None for p in self.parts)

    def __len__(self) -> int:
        return sum(1 if isinstance(p, Path) else len(p.x) for p in self.parts)

    def batches(self, size: int) -> Iterator[Batch]:
        """Batches of at most `size` inputs, in the order given; a batch never mixes images with rows of a file."""
        images: list[Path] = []
        for part in self.parts:
            if isinstance(part, Path):
                images.append(part)
                if len(images) == size:
                    yield from self._images(images)
                    images = []
                continue
            yield from self._images(images)
            images = []
            for start in range(0, len(part.x), size):
                rows = range(start, min(start + size, len(part.x)))
                yield Batch([f"{part.name}:{i}" for i in rows], part.x[rows.start : rows.stop],
                            None if part.targets is None else part.targets[rows.start : rows.stop])
        yield from self._images(images)

    def _images(self, paths: list[Path]) -> Iterator[Batch]:
        read: list[np.ndarray] = []
        names: list[str] = []
        for path in paths:
            pixels = self._guard(str(path), lambda: read_pixels(path, self.spec.in_shape, str(path)))
            if pixels is not None:
                read.append(pixels)
                names.append(str(path))
        if read:
            yield Batch(names, torch.from_numpy(np.stack(read)))

    def _guard(self, name: str, action):
        """The action's result; a DlxError ends the command, or with skip_bad lists the file and gives None."""
        try:
            return action()
        except DlxError as e:
            if not self.skip_bad:
                raise
            self.bad.append((name, str(e)))
            return None

    def _expand(self, text: str) -> list[Path]:
        path = expanded(text, "input")
        if path.is_dir():
            found = [Path(p) for p in sorted(os.path.join(parent, name) for parent, _, names in os.walk(path)
                                             for name in names if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES)]
            # (each is checked to be a file in _part; strings sort ten times faster than paths)
            if not found:
                self._guard(text, lambda: _raise(f"{text}: a folder without image files ({', '.join(sorted(IMAGE_SUFFIXES))})"))
            return found
        if path.exists():
            return [path]
        matched = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        if not matched:
            self._guard(text, lambda: _raise(f"{text}: no such file or folder, and no file matches it as a glob"))
        return matched

    def _part(self, path: Path) -> Path | Loaded:
        suffix = path.suffix.lower()
        if suffix in TABLE_SUFFIXES:
            return self._csv(path)
        if suffix in ARRAY_SUFFIXES:
            return self._arrays(path)
        if not self.spec.is_image:
            raise DlxError(f"{path}: this run's model takes {_what(self.spec)}; give a CSV table with its columns or "
                           f".npz/.pt arrays")
        if not path.is_file():
            raise DlxError(f"{path}: not a regular file")
        return path  # read when its batch comes

    def _arrays(self, path: Path) -> Loaded:
        arrays = load_arrays(path, str(path))
        if "x" not in arrays:
            raise DlxError(f"{path}: no array 'x' (it has: {', '.join(arrays) or 'nothing'}); save the inputs as x")
        x = arrays["x"].float()
        if tuple(x.shape[1:]) != self.spec.in_shape:
            raise DlxError(f"{path}: x holds samples of shape {tuple(x.shape[1:])}, but this run's model takes "
                           f"{self.spec.in_shape} (one sample per row of x)")
        y = arrays.get("y")
        return Loaded(str(path), x, None if y is None else [_answer(v, self.spec) for v in y])

    def _csv(self, path: Path) -> Loaded:
        table = self.table() if self.table is not None else None
        if table is None or not table.columns:
            raise DlxError(f"{path}: this run's data has no named columns to read a CSV table by; give .npz/.pt arrays "
                           f"with x of shape (N, {', '.join(map(str, self.spec.in_shape))})")
        try:
            with path.open(newline="", encoding="utf-8-sig") as f:
                rows = [row for row in csvlib.reader(f) if any(cell.strip() for cell in row)]
        except (UnicodeDecodeError, csvlib.Error) as e:
            raise DlxError(f"{path}: not a readable CSV table of UTF-8 text ({e})") from None
        if not rows:
            raise DlxError(f"{path}: an empty file; a CSV table needs a header row")
        return Loaded(str(path), *_table_rows(path, rows, table))


def _table_rows(path: Path, rows: list[list[str]], table: Table) -> tuple[Tensor, list[str] | None]:
    """The features of each row, one-hot encoding word columns over the training file's words, and the target
    column's values if the table has one."""
    header = [h.strip() for h in rows[0]]
    needed = [c.name for c in table.columns]
    missing = [name for name in needed if name not in header]
    extra = [name for name in header if name not in needed and name != table.target]
    if missing or extra:
        problems = ([f"no column {', '.join(map(repr, missing))}"] if missing else []) + (
            [f"column {', '.join(map(repr, extra))} is not one of the run's" ] if extra else [])
        raise DlxError(f"{path}: {'; '.join(problems)} (the run reads {', '.join(needed)}; a column "
                       f"'{table.target}' may be present and is reported beside the prediction)")
    where = {name: header.index(name) for name in header}
    features: list[list[float]] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DlxError(f"{path} line {line}: {len(row)} fields, the header has {len(header)}")
        values: list[float] = []
        for column in table.columns:
            values += _encode(row[where[column.name]].strip(), column, f"{path} line {line}, column '{column.name}'")
        features.append(values)
    targets = [row[where[table.target]].strip() for row in rows[1:]] if table.target in where else None
    return torch.tensor(features, dtype=torch.float32).reshape(len(features), -1), targets


def _encode(text: str, column: Column, where: str) -> list[float]:
    if column.levels:
        if text not in column.levels:
            raise DlxError(f"{where}: {text!r} is not among the words the run was trained on "
                           f"({', '.join(column.levels)})")
        return [float(text == level) for level in column.levels]
    try:
        value = float(text)
    except ValueError:
        raise DlxError(f"{where}: {text!r} is not a number") from None
    if not np.isfinite(value):
        raise DlxError(f"{where}: {text!r} is not a finite number")
    return [value]


def _answer(value: Tensor, spec: DataSpec) -> str:
    """An array's y as the row reports it: a class's name, or the value(s)."""
    if spec.task == CLASSIFICATION and value.numel() == 1 and 0 <= int(value) < spec.num_classes:
        return spec.class_names[int(value)]
    return " ".join(f"{float(v):.6g}" for v in value.flatten())


def _what(spec: DataSpec) -> str:
    if len(spec.in_shape) == 1:
        return f"tables of {spec.in_shape[0]} features, not images"
    return f"sequences of shape {spec.in_shape}, not images"


def _raise(message: str) -> None:
    raise DlxError(message)
