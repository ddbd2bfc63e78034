"""The user's own data: a folder of images per class, a CSV table, or saved tensors (.npz / .pt).

Everything is loaded into memory as tensors, like every dlx dataset. Paths are relative to the
directory dlx runs in. Features are standardised on the train split by dlx itself (data.standardize).
"""
from __future__ import annotations

import csv as csvlib
import math
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from dlx.data.base import CLASSIFICATION, REGRESSION, ArrayData, Column
from dlx.data import decode
from dlx.data.checks import fits_in_memory, require_memory
from dlx.data.stream import StreamData, announce
from dlx.errors import DlxError, did_you_mean
from dlx.paths import expanded
from dlx.registry import datasets

Task = Literal["auto", "classification", "regression"]


def existing(path: str, what: str) -> Path:
    p = expanded(path, "data.path")
    if not p.exists():
        raise DlxError(f"data.path: {p} does not exist (give the {what}, relative to where dlx runs)")
    return p


def regular_file(path: str, what: str) -> Path:
    """An existing regular file: a directory, a pipe or a device is refused (reading a pipe could wait forever)."""
    p = existing(path, what)
    if not p.is_file():
        kind = "a directory" if p.is_dir() else "not a regular file (a pipe, socket or device)"
        raise DlxError(f"data.path: {p} is {kind}; give the {what}")
    return p


@datasets.register("image_folder", "your images: a sub-folder per class (path/cat/1.jpg, ...), resized to size x size")
def image_folder(*, path: str, size: Annotated[int, Field(ge=4, le=1024)] = 64, channels: Literal[1, 3] = 3,
                 test_path: str | None = None, stream: bool = False) -> ArrayData | StreamData:
    """test_path: an optional folder with the same class sub-folders, used as the test split. stream: read the images
    from disk batch by batch (chosen with a note when they would not fit in memory)."""
    listings = [decode.list_folder(existing(path, "folder of class folders"))]
    if test_path is not None:
        listings.append(decode.list_folder(existing(test_path, "folder of class folders"), listings[0].classes,
                                           "data.test_path"))
    classes = tuple(listings[0].classes)
    count = sum(len(listing) for listing in listings)
    nbytes = count * channels * size * size  # held as uint8 pixels (Splits.prepare makes floats a batch at a time)
    if not stream and not fits_in_memory(nbytes):
        announce(f"data.path: {count} images at {size}x{size} as uint8 pixels", nbytes)
        stream = True
    parts = []
    for listing in listings:
        y = torch.tensor(listing.targets, dtype=torch.long)
        if stream:
            parts.append((decode.FolderExamples(size, channels, files=listing.files), y))
        else:  # each file is checked as it is decoded
            parts.append((torch.from_numpy(decode.load_folder(listing, size, channels)), y))  # (N, C, H, W) uint8
    test = parts[1] if len(parts) > 1 else None
    if stream:
        return StreamData(*parts[0], classes, test=test, source=f"data.path: {path}")
    return ArrayData(*parts[0], CLASSIFICATION, classes, test=test)


CSV_EXPANSION = 10  # a CSV file's rows take about this many times its size in memory as Python strings


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _rows(file: Path, delimiter: str) -> list[tuple[int, list[str]]]:
    """(line number, fields) of every row; an unreadable file is one line naming where it went wrong."""
    require_memory(file.stat().st_size * CSV_EXPANSION, f"data.path: {file}'s rows",
                   "use a smaller file, or save the table with numpy.savez and read it with data.name: tensors")
    line = 0
    try:
        with file.open(newline="", encoding="utf-8-sig") as f:
            reader = csvlib.reader(f, delimiter=delimiter)
            rows = []
            for row in reader:
                rows.append((reader.line_num, row))
                line = reader.line_num
    except UnicodeDecodeError as e:
        raise DlxError(f"data.path: {file} is not UTF-8 text (byte 0x{e.object[e.start]:02x} after line {line}); "
                       f"convert it, e.g. iconv -f latin1 -t utf-8") from None
    except csvlib.Error as e:
        raise DlxError(f"data.path: {file} line {line + 1}: {e}") from None
    return rows


def checked_header(header: list[str], target: str, file: Path) -> list[str]:
    """A table's column names, in memory or streamed: each once, the target among them, and a feature beside it."""
    twice = next((h for i, h in enumerate(header) if h in header[:i]), None)
    if twice is not None:
        raise DlxError(f"data.path: {file} has the column '{twice}' twice in its header; rename one")
    if target not in header:
        raise DlxError(f"data.target: no column '{target}' in {file} (columns: {', '.join(header)})")
    if len(header) == 1:
        raise DlxError(f"data.path: {file} has no feature columns besides '{target}'")
    return header


def _numbers(name: str, values: list[str], lines: list[int], file: Path) -> np.ndarray | None:
    """A column as float32 numbers, or None when it holds words; NaN, infinity or a number beyond float32 is
    refused naming its line, since training on it gives NaN losses without a word."""
    parsed = [_number(v) for v in values]
    if any(n is None for n in parsed):
        return None
    with np.errstate(over="ignore"):
        numbers = np.array(parsed, dtype=np.float32)
    bad = ~np.isfinite(numbers)
    if bad.any():
        i = int(bad.argmax())
        raise DlxError(f"data.path: {file} line {lines[i]}, column '{name}': {values[i]!r} is not a finite 32-bit "
                       f"number; dlx cannot train on NaN or infinite values: fill in that cell or drop the row")
    return numbers


def _is_classes(numbers: np.ndarray | None, task: Task) -> bool:
    """auto: words are classes; so are whole numbers with at most 20 distinct values (0/1, ratings, ...)."""
    if task != "auto":
        return task == "classification"
    if numbers is None:
        return True
    distinct = np.unique(numbers)
    return len(distinct) <= 20 and bool(np.all(distinct == np.round(distinct)))


def _levels(values: list[str]) -> tuple[np.ndarray, list[str]]:
    """Each value's index among the distinct values (numbers in numeric order, then words), and those values."""
    levels = sorted(set(values), key=lambda v: (_number(v) is None, _number(v) or 0.0, v))
    index = {v: i for i, v in enumerate(levels)}
    return np.array([index[v] for v in values], dtype=np.int64), levels


def _one_hot(name: str, values: list[str], file: Path) -> np.ndarray:
    codes, levels = _levels(values)
    require_memory(len(values) * len(levels) * 4, f"data.path: {file}: column '{name}' one-hot encoded "
                                                    f"({len(levels)} distinct words)", "drop that column or give it as numbers")
    encoded = np.zeros((len(values), len(levels)), dtype=np.float32)
    encoded[np.arange(len(values)), codes] = 1.0
    return encoded


@datasets.register("csv", "your table: a CSV file with a header row and a target column; other columns are features "
                          "(words are one-hot encoded)")
def csv(*, path: str, target: str, task: Task = "auto", delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ",",
        stream: bool = False) -> ArrayData | StreamData:
    """task auto: classification when the target holds words or few whole numbers, else regression. stream: read
    the rows from disk batch by batch (chosen with a note when the file's rows would not fit in memory)."""
    file = regular_file(path, "CSV file")
    held = file.stat().st_size * CSV_EXPANSION
    if not stream and not fits_in_memory(held):
        announce(f"data.path: {file}'s rows", held)
        stream = True
    if stream:
        from dlx.data.table_stream import stream_csv  # it reads this module's parsing helpers

        return stream_csv(file, target, task, delimiter)
    rows = _rows(file, delimiter)
    if len(rows) < 2:
        raise DlxError(f"data.path: {file} needs a header row and at least one row of data")
    header = checked_header([h.strip() for h in rows[0][1]], target, file)
    body = [(line, r) for line, r in rows[1:] if any(c.strip() for c in r)]
    bad = next(((line, r) for line, r in body if len(r) != len(header)), None)
    if bad is not None:
        raise DlxError(f"data.path: {file} line {bad[0]} has {len(bad[1])} fields, the header has {len(header)}")
    lines = [line for line, _ in body]
    columns = {name: [r[i].strip() for _, r in body] for i, name in enumerate(header)}
    for name, values in columns.items():
        if "" in values:
            raise DlxError(f"data.path: {file} line {lines[values.index('')]} has an empty cell in column '{name}'; "
                           f"fill it or drop the row")
    numbers = {name: _numbers(name, values, lines, file) for name, values in columns.items()}
    features = [numbers[name][:, None] if numbers[name] is not None else _one_hot(name, values, file)
                for name, values in columns.items() if name != target]
    described = tuple(Column(name, () if numbers[name] is not None else tuple(_levels(values)[1]))
                      for name, values in columns.items() if name != target)
    x = torch.as_tensor(np.concatenate(features, axis=1))
    source = f"data.path: {file}"
    if _is_classes(numbers[target], task):
        codes, levels = _levels(columns[target])
        return ArrayData(x, torch.as_tensor(codes), CLASSIFICATION, tuple(levels), source=source, columns=described,
                         target=target)
    if numbers[target] is None:
        raise DlxError(f"data.target: column '{target}' holds words, which cannot be regression targets")
    return ArrayData(x, torch.as_tensor(numbers[target][:, None]), REGRESSION, source=source, columns=described,
                     target=target)


ARRAYS = ("x", "y", "x_test", "y_test")  # what a tensors file may hold
NUMPY_KINDS = {"b": "booleans", "i": "integers", "u": "integers", "f": "floats", "c": "complex numbers"}
READ_ERRORS = (OSError, ValueError, RuntimeError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError)


def _names(names: list, file: Path, what: str) -> None:
    """Only the arrays dlx reads, by name: anything else in the file is refused rather than ignored."""
    odd = [repr(n) for n in names if not isinstance(n, str)]
    if odd:
        raise DlxError(f"{what}: {file} has keys that are not names ({', '.join(odd[:3])}); save a dict with the "
                       f"keys {', '.join(ARRAYS)}")
    for name in names:
        if name not in ARRAYS:
            raise DlxError(f"{what}: {file} holds '{name}', which dlx does not read{did_you_mean(name, ARRAYS)}; "
                           f"a tensors file holds x and y, optionally x_test and y_test, and nothing else")


def _npz_headers(file: Path, what: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each member's shape and dtype, from its .npy header: read before any array, so neither a zip bomb nor an
    array of text or Python objects is ever loaded."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    headers = {}
    with zipfile.ZipFile(file) as archive:
        members = archive.infolist()
        _names([m.filename.removesuffix(".npy") for m in members], file, what)
        for member in members:
            with archive.open(member) as stream:
                version = np.lib.format.read_magic(stream)
                if version not in readers:
                    raise ValueError(f"{member.filename} is in .npy format {version[0]}.{version[1]}, not 1.0 or 2.0")
                shape, _, dtype = readers[version](stream)
            headers[member.filename.removesuffix(".npy")] = (shape, dtype)
    return headers


def _npz(file: Path, what: str) -> dict[str, Tensor]:
    headers = _npz_headers(file, what)
    for name, (shape, dtype) in headers.items():
        if dtype.kind not in NUMPY_KINDS:
            raise DlxError(f"{what}: {file}: '{name}' holds {dtype} values (text, dates or objects), not numbers")
    # each array as stored, then as float32 or int64
    require_memory(sum(math.prod(shape) * (dtype.itemsize + 8) for shape, dtype in headers.values()),
                   f"{what}: {file}'s arrays", "use a smaller file")
    with np.load(file, allow_pickle=False) as arrays:
        return {k: torch.as_tensor(arrays[k]) for k in arrays.files}


def _pt(file: Path, what: str) -> dict[str, Tensor]:
    require_memory(file.stat().st_size * 2, f"{what}: {file}", "use a smaller file")  # as stored, then as float32
    try:
        loaded = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # torch's text advises weights_only=False, which could run the file's code
        if "Unsupported global" not in str(e):  # no refused object: damage, or not torch.save's format at all
            raise DlxError(f"{what}: {file} cannot be read (not a file torch.save wrote, or a damaged one)") from None
        raise DlxError(f"{what}: {file} holds Python objects besides tensors, which dlx does not load (they could "
                       f"run code); save a dict of tensors: torch.save({{'x': x, 'y': y}}, path)") from None
    if not isinstance(loaded, dict):
        raise DlxError(f"{what}: {file} holds a {type(loaded).__name__}, not a dict of tensors")
    _names(list(loaded), file, what)
    odd = next((name for name, value in loaded.items() if not isinstance(value, Tensor)), None)
    if odd is not None:
        raise DlxError(f"{what}: {file}: '{odd}' holds a {type(loaded[odd]).__name__}, not a tensor")
    return loaded


def load_arrays(file: Path, what: str = "data.path") -> dict[str, Tensor]:
    readers = {".npz": _npz, ".pt": _pt}
    if file.suffix not in readers:
        raise DlxError(f"{what}: {file} is neither .npz nor .pt")
    try:
        return readers[file.suffix](file, what)
    except READ_ERRORS as e:
        reason = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise DlxError(f"{what}: {file} cannot be read ({reason})") from None


def _targets(y: Tensor, name: str, classify: bool, file: Path) -> Tensor:
    """Class indices (N,) or (N, T) as int64, or regression targets (N, k) as float32; a float that is no whole
    number is no class index, and is refused rather than truncated."""
    if not classify:
        return (y.flatten(1) if y.dim() > 1 else y.unsqueeze(1)).float()
    if y.is_floating_point():
        bad = (y != y.round()) | ~torch.isfinite(y)
        if bad.any():
            raise DlxError(f"data.path: {file}: {name} holds {y[bad][0].item()} at example "
                           f"{int(torch.nonzero(bad)[0][0])}, not a class index; for numbers to predict set "
                           f"data.task: regression")
    return y.long()


@datasets.register("tensors", "your arrays: a .npz (numpy.savez) or .pt (torch.save of a dict) with x and y, "
                              "optionally x_test and y_test", aliases=("npz", "pt"))
def tensors(*, path: str, task: Task = "auto") -> ArrayData:
    """task auto: integer y is class indices, float y regression targets."""
    file = regular_file(path, ".npz or .pt file")
    arrays = load_arrays(file)
    missing = [name for name in ARRAYS[:2] if name not in arrays]
    if missing or ("x_test" in arrays) != ("y_test" in arrays):
        missing = missing or [next(n for n in ARRAYS[2:] if n not in arrays)]
        raise DlxError(f"data.path: {file} has no {' or '.join(missing)} (it has: {', '.join(arrays) or 'nothing'})")
    for name, t in arrays.items():
        if t.dim() == 0:
            raise DlxError(f"data.path: {file}: '{name}' is a single number, not an array with one row per example")
        if t.is_complex() or t.layout != torch.strided:
            raise DlxError(f"data.path: {file}: '{name}' is a {t.dtype} tensor ({t.layout}); dlx needs a dense array "
                           f"of real numbers")
    classify = task == "classification" or (task == "auto" and not arrays["y"].is_floating_point())
    x, y = arrays["x"].float(), _targets(arrays["y"], "y", classify, file)
    test = (arrays["x_test"].float(), _targets(arrays["y_test"], "y_test", classify, file)) if "x_test" in arrays else None
    return ArrayData(x, y, CLASSIFICATION if classify else REGRESSION, test=test, source=f"data.path: {file}")
