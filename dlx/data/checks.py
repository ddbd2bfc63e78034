"""What every in-memory dataset must be before anything trains on it, checked in one place.

Loaders turn files into tensors; these checks then refuse, in one line that names the example, the
class or the limit, whatever would otherwise end in a traceback, in absurd memory use, or in a run
that trains without a word on data that cannot teach it (NaN features, a single class).
"""
from __future__ import annotations

import os

import torch
from torch import Tensor

from dlx.data.base import CLASSIFICATION, REGRESSION, ArrayData, Splits
from dlx.errors import DlxError

MEMORY_SHARE = 0.5  # refuse what would take more than this share of the free memory: dlx keeps datasets in memory
MAX_CLASSES = 100_000  # class indices 0..MAX_CLASSES-1; more would give output layers and confusion matrices absurd sizes
SPLITS = ("train", "val", "test")


def _address_space_left() -> int | None:
    """Bytes this process may still map under its address-space limit (ulimit -v, RLIMIT_AS), or None without one."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if limit == resource.RLIM_INFINITY:
            return None
        with open("/proc/self/status") as status:
            mapped = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
        return max(0, limit - mapped)
    except (ImportError, OSError, ValueError, StopIteration):
        return None


def _available() -> int:
    """Linux's MemAvailable, which counts the page cache the kernel gives back (the pages merely free are far fewer on
    a machine that has read many files), else the free pages, else a large number where the system does not tell."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def free_memory() -> int:
    """Bytes of memory available to a new allocation: the machine's available memory, or less where this process's
    address-space limit leaves less."""
    left = _address_space_left()
    return _available() if left is None else min(_available(), left)


def fits_in_memory(nbytes: int) -> bool:
    """Whether `nbytes` fit in the share of free memory a dataset may take."""
    return nbytes <= MEMORY_SHARE * free_memory()


def require_memory(nbytes: int, what: str, fix: str) -> None:
    """A DlxError unless `nbytes` fit in the share of free memory a dataset may take: checked before allocating."""
    if not fits_in_memory(nbytes):
        free = free_memory()
        raise DlxError(f"{what} need {nbytes / 2**30:.1f} GB, more than half the free memory ({free / 2**30:.1f} GB; "
                       f"dlx keeps datasets in memory); {fix}")


def _where(t: Tensor, bad: Tensor) -> str:
    """'example 17' or 'example 17, position (2, 3)': the first True of `bad` in `t`'s coordinates."""
    first = torch.nonzero(bad.reshape(len(t), -1))[0].tolist()
    if t.dim() <= 1:
        return f"example {first[0]}"
    position = torch.unravel_index(torch.tensor(first[1]), t.shape[1:])
    return f"example {first[0]}, position {tuple(int(p) for p in position)}"


def _finite(t: Tensor, name: str, source: str) -> None:
    if t.is_floating_point():
        bad = ~torch.isfinite(t)
        if bad.any():
            value = t.reshape(len(t), -1)[bad.reshape(len(t), -1)][0].item()
            raise DlxError(f"{source}: {name} holds {value} at {_where(t, bad)}; dlx cannot train on NaN or infinite "
                           f"values: fix or drop that example")


def _examples(x: Tensor, y: Tensor, names: tuple[str, str], source: str) -> None:
    if x.dim() < 2 or x.shape[1:].numel() == 0:
        raise DlxError(f"{source}: {names[0]} has shape {tuple(x.shape)}; dlx needs (examples, features...) with at "
                       f"least one feature, e.g. ({len(x) if x.dim() else 1}, 1) for one number per example")
    if len(x) == 0:
        raise DlxError(f"{source}: {names[0]} has no examples")
    if y.dim() == 0 or len(x) != len(y):
        raise DlxError(f"{source}: {names[0]} has {len(x)} examples but {names[1]} has shape {tuple(y.shape)}")
    _finite(x, names[0], source)


def _labels(y: Tensor, name: str, classes: int, source: str) -> None:
    """Class indices 0..classes-1 (classes: 0 when the data names none, then up to MAX_CLASSES)."""
    if y.min() < 0:
        raise DlxError(f"{source}: {name} holds the class index {y.min().item()} at {_where(y, y == y.min())}; class "
                       f"indices are 0, 1, 2, ...")
    limit = classes or MAX_CLASSES
    if y.max() >= limit:
        what = f"this data names {classes} classes" if classes else f"dlx allows at most {MAX_CLASSES} classes"
        raise DlxError(f"{source}: {name} holds the class index {y.max().item()} at {_where(y, y == y.max())}, but "
                       f"{what} (indices 0..{limit - 1}); number the classes 0..K-1")


def check_class_count(class_names: tuple[str, ...], source: str) -> None:
    """At most MAX_CLASSES classes, for data in memory or streamed: more is a table's number column taken for words."""
    if len(class_names) > MAX_CLASSES:
        raise DlxError(f"{source}: {len(class_names)} classes, but dlx allows at most {MAX_CLASSES}; is the "
                       f"target a number to predict (data.task: regression)?")


def check_arrays(data: ArrayData, source: str) -> None:
    """Shapes that fit together, finite numbers, class indices in range, a test split like the training data."""
    check_class_count(data.class_names, source)
    pairs = {("x", "y"): (data.x, data.y)}
    if data.test is not None:
        pairs[("x_test", "y_test")] = data.test
    for names, (x, y) in pairs.items():
        _examples(x, y, names, source)
        if data.task == CLASSIFICATION:
            _labels(y, names[1], len(data.class_names), source)
        elif data.task == REGRESSION:
            if y.dim() != 2 or y.shape[1] == 0:
                raise DlxError(f"{source}: the regression targets {names[1]} have shape {tuple(y.shape)}, not "
                               f"(examples, outputs)")
            _finite(y, names[1], source)
    if data.test is not None:
        for i, name in enumerate(("x", "y")):
            ours, theirs = tuple(data.x.shape[1:]) if i == 0 else tuple(data.y.shape[1:]), tuple(data.test[i].shape[1:])
            if ours != theirs and (i == 0 or data.task == REGRESSION):
                raise DlxError(f"{source}: {name}_test has examples of shape {theirs}, but {name} has {ours}; the test "
                               f"split must look like the training data")


def check_splits(splits: Splits, fractions: tuple[float, float, float], examples: int) -> None:
    """Each split holds examples, and a classification's train split at least two classes."""
    empty = [s for s in SPLITS if len(splits.parts[s][1]) == 0]  # as stored: no float copy of the images
    if empty:
        zero = [s for s in empty if fractions[SPLITS.index(s)] == 0]
        why = (f"give the {' and '.join(zero)} split a share above 0" if zero else
               f"{examples} examples are too few to split so (each class is split in these proportions); "
               f"add examples or give the empty split a larger share")
        raise DlxError(f"data.split {list(fractions)} leaves the {' and '.join(empty)} split"
                       f"{'s' if len(empty) > 1 else ''} without examples: {why}")
    spec = splits.spec
    if spec.task == CLASSIFICATION:
        present = torch.unique(splits.parts["train"][1])
        if len(present) < 2:
            raise DlxError(f"data: the train split holds only the class {spec.class_names[int(present[0])]!r}; "
                           f"classification needs at least two classes present in train (with one it reaches "
                           f"accuracy 1 learning nothing)")
