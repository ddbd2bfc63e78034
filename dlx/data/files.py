"""The user's own data: a folder of images per class, a CSV table, or saved tensors (.npz / .pt).

Everything is loaded into memory as tensors, like every dlx dataset. Paths are relative to the
directory dlx runs in. Features are standardised on the train split by dlx itself (data.standardize).
"""
from __future__ import annotations

import csv as csvlib
import os
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor

from dlx.data.base import CLASSIFICATION, REGRESSION, ArrayData
from dlx.errors import DlxError
from dlx.registry import datasets

Task = Literal["auto", "classification", "regression"]
MEMORY_SHARE = 0.5  # refuse a dataset that would take more than this share of the free memory


def existing(path: str, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise DlxError(f"data.path: {p} does not exist (give the {what}, relative to where dlx runs)")
    return p


def free_memory() -> int:
    """Bytes of free memory, or a large number where the system does not tell."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def _folder(path: Path, size: int, channels: int, classes: list[str] | None = None) -> tuple[Tensor, Tensor, list[str]]:
    from torchvision import datasets as tv  # when images are read, not when datasets are listed
    from torchvision import transforms

    steps = [transforms.Resize((size, size)), *([transforms.Grayscale(1)] if channels == 1 else []), transforms.ToTensor()]
    try:
        folder = tv.ImageFolder(str(path), transform=transforms.Compose(steps))
    except (FileNotFoundError, OSError) as e:
        raise DlxError(f"data.path: {path}: {e} (expected one sub-folder of images per class)") from None
    if classes is not None and folder.classes != classes:
        raise DlxError(f"data.test_path: {path} has classes {folder.classes}, but data.path has {classes}")
    needed = len(folder) * channels * size * size * 4
    if needed > MEMORY_SHARE * free_memory():
        raise DlxError(f"data.path: {len(folder)} images at {size}x{size} need {needed / 2**30:.1f} GB, more than "
                       f"half the free memory (dlx keeps datasets in memory); lower data.size")
    try:
        x = torch.stack([image for image, _ in folder])  # (N, C, size, size) in [0, 1]
    except OSError as e:
        raise DlxError(f"data.path: an image in {path} cannot be read ({e})") from None
    return x, torch.tensor(folder.targets, dtype=torch.long), folder.classes


@datasets.register("image_folder", "your images: a sub-folder per class (path/cat/1.jpg, ...), resized to size x size")
def image_folder(*, path: str, size: Annotated[int, Field(ge=4, le=1024)] = 64, channels: Literal[1, 3] = 3,
                 test_path: str | None = None) -> ArrayData:
    """test_path: an optional folder with the same class sub-folders, used as the test split."""
    x, y, classes = _folder(existing(path, "folder of class folders"), size, channels)
    test = None
    if test_path is not None:
        test_x, test_y, _ = _folder(existing(test_path, "folder of class folders"), size, channels, classes)
        test = (test_x, test_y)
    return ArrayData(x, y, CLASSIFICATION, tuple(classes), test=test)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _numeric(values: list[str]) -> bool:
    return all(_number(v) is not None for v in values)


def _is_classes(values: list[str], task: Task) -> bool:
    """auto: words are classes; so are whole numbers with at most 20 distinct values (0/1, ratings, ...)."""
    if task != "auto":
        return task == "classification"
    if not _numeric(values):
        return True
    numbers = {_number(v) for v in values}
    return len(numbers) <= 20 and all(n.is_integer() for n in numbers)


def _one_hot(values: list[str]) -> tuple[np.ndarray, list[str]]:
    levels = sorted(set(values), key=lambda v: (_number(v) is None, _number(v) or 0.0, v))
    index = {v: i for i, v in enumerate(levels)}
    return np.eye(len(levels), dtype=np.float32)[[index[v] for v in values]], levels


@datasets.register("csv", "your table: a CSV file with a header row and a target column; other columns are features "
                          "(words are one-hot encoded)")
def csv(*, path: str, target: str, task: Task = "auto", delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ",") -> ArrayData:
    """task auto: classification when the target holds words or few whole numbers, else regression."""
    file = existing(path, "CSV file")
    with file.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csvlib.reader(f, delimiter=delimiter))
    if len(rows) < 2:
        raise DlxError(f"data.path: {file} needs a header row and at least one row of data")
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if any(c.strip() for c in r)]
    if target not in header:
        raise DlxError(f"data.target: no column '{target}' in {file} (columns: {', '.join(header)})")
    bad = next((i for i, r in enumerate(body, 2) if len(r) != len(header)), None)
    if bad is not None:
        raise DlxError(f"data.path: {file} line {bad} has {len(body[bad - 2])} fields, the header has {len(header)}")
    columns = {name: [r[i].strip() for r in body] for i, name in enumerate(header)}
    for name, values in columns.items():
        if "" in values:
            raise DlxError(f"data.path: {file} has empty cells in column '{name}'; fill them or drop those rows")
    features = []
    for name, values in columns.items():
        if name != target:
            features.append(np.array([[float(v)] for v in values], dtype=np.float32) if _numeric(values)
                            else _one_hot(values)[0])
    if not features:
        raise DlxError(f"data.path: {file} has no feature columns besides '{target}'")
    x = torch.as_tensor(np.concatenate(features, axis=1))
    labels = columns[target]
    if _is_classes(labels, task):
        codes, levels = _one_hot(labels)
        return ArrayData(x, torch.as_tensor(codes.argmax(1), dtype=torch.long), CLASSIFICATION, tuple(levels))
    if not _numeric(labels):
        raise DlxError(f"data.target: column '{target}' holds words, which cannot be regression targets")
    return ArrayData(x, torch.tensor([[float(v)] for v in labels]), REGRESSION)


def _load_arrays(file: Path) -> dict[str, Tensor]:
    try:
        if file.suffix == ".npz":
            with np.load(file, allow_pickle=False) as arrays:
                return {k: torch.as_tensor(arrays[k]) for k in arrays.files}
        if file.suffix == ".pt":
            loaded = torch.load(file, map_location="cpu", weights_only=True)
            if isinstance(loaded, dict) and all(isinstance(v, Tensor) for v in loaded.values()):
                return loaded
            raise DlxError(f"data.path: {file} holds a {type(loaded).__name__}, not a dict of tensors")
    except (OSError, ValueError, RuntimeError) as e:
        raise DlxError(f"data.path: {file} cannot be read ({str(e).splitlines()[0]})") from None
    raise DlxError(f"data.path: {file} is neither .npz nor .pt")


def _pair(x: Tensor, y: Tensor, classify: bool) -> tuple[Tensor, Tensor]:
    if len(x) != len(y):
        raise DlxError(f"data.path: x has {len(x)} examples but y has {len(y)}")
    return x.float(), (y.long() if classify else y.float().reshape(len(y), -1))


@datasets.register("tensors", "your arrays: a .npz (numpy.savez) or .pt (torch.save of a dict) with x and y, "
                              "optionally x_test and y_test", aliases=("npz", "pt"))
def tensors(*, path: str, task: Task = "auto") -> ArrayData:
    """task auto: integer y is class indices, float y regression targets."""
    arrays = _load_arrays(existing(path, ".npz or .pt file"))
    missing = {"x", "y"} - set(arrays)
    if missing:
        raise DlxError(f"data.path: {path} has no {' or '.join(sorted(missing))} (it has: {', '.join(arrays) or 'nothing'})")
    classify = task == "classification" or (task == "auto" and not arrays["y"].is_floating_point())
    x, y = _pair(arrays["x"], arrays["y"], classify)
    test = _pair(arrays["x_test"], arrays["y_test"], classify) if "x_test" in arrays and "y_test" in arrays else None
    return ArrayData(x, y, CLASSIFICATION if classify else REGRESSION, test=test)
