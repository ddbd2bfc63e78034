"""What every dataset hands to the rest of dlx: tensors in memory, a spec, splits and batches."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from dlx.data.settings import CLASSIFICATION, LANGUAGE, RECONSTRUCTION, REGRESSION, SEQ2SEQ, Bag, Fold  # noqa: F401  (re-exported)
from dlx.errors import DlxError


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data to size its input and output layers."""

    in_shape: tuple[int, ...]  # one sample: (C, H, W) for images, (F,) for tables, (T, F) for sequences
    task: str  # CLASSIFICATION, REGRESSION or RECONSTRUCTION
    num_classes: int = 0  # classification only
    out_features: int = 0  # regression only: width of the target
    class_names: tuple[str, ...] = ()  # LANGUAGE: the vocabulary, token i is the string class_names[i]; SEQ2SEQ: the target's
    tokenizer: str = "chars"  # LANGUAGE: what a token is, chars or words (dlx.data.text.vocab_of)
    source_names: tuple[str, ...] = ()  # SEQ2SEQ: the source's vocabulary

    @property
    def num_outputs(self) -> int:
        return self.num_classes if self.task == CLASSIFICATION else self.out_features

    @property
    def is_image(self) -> bool:
        return len(self.in_shape) == 3


@dataclass(frozen=True)
class Column:
    """A table's column as a model's inputs hold it: one number, or a word one-hot encoded over `levels`."""

    name: str
    levels: tuple[str, ...] = ()


@dataclass
class ArrayData:
    """A dataset that fits in memory, as a registered dataset returns it."""

    x: Tensor  # (N, *in_shape)
    y: Tensor  # (N,) class indices, or (N, k) regression targets
    task: str
    class_names: tuple[str, ...] = ()
    test: tuple[Tensor, Tensor] | None = None  # an official test split shipped with the data (MNIST's 10k)
    source: str = ""  # where the data came from, for messages: "data.path: arrays.npz"
    columns: tuple[Column, ...] = ()  # tables: the feature columns in the order of x's features (read back by predict)
    target: str = ""  # tables: the target column's name
    source_names: tuple[str, ...] = ()  # SEQ2SEQ: the source's vocabulary (class_names is the target's)

    def spec(self) -> DataSpec:
        if self.task == SEQ2SEQ:
            return DataSpec(tuple(self.x.shape[1:]), self.task, num_classes=len(self.class_names),
                            class_names=self.class_names, source_names=self.source_names)
        if self.task == CLASSIFICATION:
            top = max(int(y.max()) for y in (self.y, *(self.test[1:] if self.test is not None else ())))
            names = self.class_names or tuple(str(c) for c in range(top + 1))  # classes seen in train or test
            return DataSpec(tuple(self.x.shape[1:]), self.task, num_classes=len(names), class_names=names)
        if self.task == RECONSTRUCTION:
            return DataSpec(tuple(self.x.shape[1:]), self.task)
        return DataSpec(tuple(self.x.shape[1:]), self.task, out_features=self.y.shape[1])

    def as_reconstruction(self) -> ArrayData:
        """The same inputs with themselves as targets (data.reconstruct: true), for autoencoders."""
        test = None if self.test is None else (self.test[0], self.test[0])
        return ArrayData(self.x, self.x, RECONSTRUCTION, test=test, source=self.source, columns=self.columns)


def split_indices(y: Tensor, fractions: tuple[float, float, float], seed: int, stratify: bool) -> list[Tensor]:
    """Train/val/test index sets fixed by the seed; each class is split in the same proportions."""
    generator = torch.Generator().manual_seed(seed)
    groups = [torch.nonzero(y == c).flatten() for c in torch.unique(y)] if stratify else [torch.arange(len(y))]
    parts: list[list[Tensor]] = [[], [], []]
    total = sum(fractions)
    for idx in groups:
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_val = round(len(idx) * fractions[1] / total)
        n_test = round(len(idx) * fractions[2] / total)
        n_train = len(idx) - n_val - n_test
        for part, chunk in zip(parts, idx.split([n_train, n_val, n_test])):
            part.append(chunk)
    return [torch.cat(p).sort().values for p in parts]


def fold_indices(y: Tensor, fold: Fold, seed: int, fractions: tuple[float, float, float], stratify: bool) -> list[Tensor]:
    """Train/val/test index sets of one cross-validation fold. The test set is split_indices' own (the same for
    every fold and for a run without folds); the rest is dealt into k folds, class after class, so every fold
    holds each class in the same proportion (counts differ by at most one)."""
    train, val, test = split_indices(y, fractions, seed, stratify)
    rest = torch.cat([train, val]).sort().values
    generator = torch.Generator().manual_seed(seed)
    groups = [rest[y[rest] == c] for c in torch.unique(y[rest])] if stratify else [rest]
    dealt = torch.cat([idx[torch.randperm(len(idx), generator=generator)] for idx in groups])
    held_out = torch.arange(len(dealt)) % fold.k == fold.index - 1
    return [dealt[~held_out].sort().values, dealt[held_out].sort().values, test]


def pick_indices(y: Tensor, task: str, fractions: tuple[float, float, float], seed: int, official_test: bool,
                 fold: Fold | None, bag: Bag | None = None) -> list[Tensor]:
    """Train/val/test index sets by `fractions` (by `fold` for cross-validation), stratified by class; the train
    set resampled for `bag`. With an official test split, the examples here are divided train:val by the first two
    fractions alone."""
    stratify = task == CLASSIFICATION and y.dim() == 1  # labels per step (N, T): a plain random split
    if official_test:
        fractions = (fractions[0], fractions[1], 0.0)
    if fractions[0] <= 0:
        raise DlxError(f"data.split: the train fraction is {fractions[0]}; give it a share above 0, e.g. [0.6, 0.2, 0.2]")
    if fold is None:
        train, val, test = split_indices(y, fractions, seed, stratify)
    else:
        train, val, test = fold_indices(y, fold, seed, fractions, stratify)
    if bag is not None:
        train = bootstrap(train, bag, seed)
    return [train, val, test]


def bootstrap(train: Tensor, bag: Bag, seed: int) -> Tensor:
    """Bag `bag.index`'s resample of the train indices: len(train) draws with replacement, fixed by (seed, index)."""
    generator = torch.Generator().manual_seed(seed * 1000 + bag.index)
    return train[torch.randint(len(train), (len(train),), generator=generator)].sort().values
PIXELS = torch.uint8  # images are held as their 0-255 pixels (a quarter of float32's memory) until batched


def as_floats(x: Tensor) -> Tensor:
    """Inputs as stored -> floats: pixels (uint8) become floats in [0, 1]; anything else is already numbers."""
    return x.float().div_(255) if x.dtype == PIXELS else x


PIXEL_CHUNK = 2**18  # pixels summed at once when pixel statistics are fitted: 2 MB as int64 (32 MB chunks left
# 200 MB of freed heap behind them on CIFAR-10, and ran at half the speed)


def _pixel_moments(x: Tensor | Rows, dims: list[int]) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation (unbiased, as Tensor.std) of pixels scaled to [0, 1], from exact integer sums
    taken a chunk of examples at a time, so no float copy of the images is ever made."""
    total = total_squares = 0
    example = max(1, math.prod(x.shape[1:]))
    chunk = max(1, PIXEL_CHUNK // example)
    for start in range(0, len(x), chunk):
        wide = x[start : start + chunk].long()
        total = total + wide.sum(dim=dims, keepdim=True)
        total_squares = total_squares + (wide * wide).sum(dim=dims, keepdim=True)
    n = len(x) * example // total.numel()
    total, total_squares = total.double(), total_squares.double()  # exact: sums of pixels stay below 2**53
    variance = (total_squares - total * (total / n)) / max(n - 1, 1)
    return (total / (n * 255)).float(), (variance.clamp_min(0).sqrt() / 255).float()


@dataclass
class Standardizer:
    """Zero mean and unit variance per feature (per channel for images), estimated on the train split."""

    mean: Tensor
    std: Tensor

    @classmethod
    def fit(cls, x: Tensor | Rows) -> Standardizer:
        """Fitted to inputs as stored: numbers, or pixels as the floats in [0, 1] they become."""
        dims = [0, *range(2, x.dim())] if x.dim() == 4 else [0]
        if x.dtype == PIXELS:
            mean, std = _pixel_moments(x, dims)
        else:
            x = x[:]  # a tensor as it is; a split's rows gathered
            mean, std = x.mean(dim=dims, keepdim=True), x.std(dim=dims, keepdim=True)
        return cls(mean, std.clamp_min(1e-8))  # a constant feature stays 0 instead of becoming NaN

    def to(self, device: torch.device) -> Standardizer:
        return Standardizer(self.mean.to(device), self.std.to(device))

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def apply_(self, x: Tensor) -> Tensor:
        """In place, on a tensor no one else holds: the same arithmetic without two temporary copies."""
        return x.sub_(self.mean.to(x.device)).div_(self.std.to(x.device))

    def invert(self, x: Tensor) -> Tensor:
        """Back to the original scale, e.g. to show an input as it was."""
        return x * self.std.to(x.device) + self.mean.to(x.device)

    def state_dict(self) -> dict[str, Tensor]:
        return {"mean": self.mean.cpu(), "std": self.std.cpu()}


class Rows:
    """One split's examples as rows of the dataset's one tensor of inputs: a split holds indices, not a copy.
    Copies would be made while the whole tensor is still held, and CIFAR-10's pixels were then in memory twice.
    Indexing gathers the rows it names, as stored; len, shape, dtype and device are the split's."""

    def __init__(self, source: Tensor, index: Tensor):
        self.source, self.index = source, index.to(source.device)
        self.shape = torch.Size((len(index), *source.shape[1:]))
        self.dtype, self.device = source.dtype, source.device

    def __len__(self) -> int:
        return len(self.index)

    def dim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: slice | Tensor) -> Tensor:
        return self.source[self.index[key]]


@dataclass
class Splits:
    """The train, val and test tensors of one run, already on the training device, as stored (images as pixels,
    not standardised); `prepare` makes examples what the model reads, batch by batch."""

    spec: DataSpec
    parts: dict[str, tuple[Tensor | Rows, Tensor | Rows]]
    standardizer: Standardizer | None = None

    def prepare(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Stored examples -> the model's inputs and targets: pixels become floats, then standardised; an
        autoencoder's target is its input so prepared. The one place where stored data becomes model input."""
        floats = as_floats(x)
        if self.standardizer is not None:  # pixels were just made floats: those may be changed in place
            floats = self.standardizer.apply_(floats) if floats is not x else self.standardizer(floats)
        return floats, (floats if self.spec.task == RECONSTRUCTION else y)

    def __getitem__(self, split: str) -> tuple[Tensor, Tensor]:
        """A whole split as the model reads it (a float copy of stored pixels: for evaluation, not training)."""
        x, y = self.parts[split]
        rows = x[:]  # a tensor as it is; a split's rows gathered
        return self.prepare(rows, rows if y is x else y[:])

    def targets(self, split: str) -> Tensor:
        """A split's targets, without a float copy of its inputs where they are not the targets themselves."""
        x, y = self.parts[split]
        return self[split][1] if y is x else y[:]

    def first(self, split: str, n: int) -> tuple[Tensor, Tensor]:
        """The first `n` examples of a split as the model reads them."""
        x, y = self.parts[split]
        return self.prepare(x[:n], y[:n])

    def batches(self, split: str, batch_size: int, shuffle: bool = False) -> Batches:
        return Batches(*self.parts[split], batch_size=batch_size, shuffle=shuffle, prepare=self.prepare)


def make_splits(data: ArrayData, fractions: tuple[float, float, float], seed: int, standardize: bool,
                device: torch.device, standardizer: Standardizer | None = None, fold: Fold | None = None,
                bag: Bag | None = None) -> Splits:
    """Split (by `fold` for cross-validation; the train split resampled for `bag`), standardise (with `standardizer` if given, e.g. a trained run's,
    else fitted on train) and move."""
    train, val, test = pick_indices(data.y, data.task, fractions, seed, data.test is not None, fold, bag)
    source = data.x.to(device)  # moved once; each split is rows of it
    parts = {"train": (Rows(source, train), data.y[train]), "val": (Rows(source, val), data.y[val]),
             "test": (Rows(source, test), data.y[test]) if data.test is None else data.test}
    if standardize and (data.x.is_floating_point() or data.x.dtype == PIXELS):
        expected = (1, data.x.shape[1], 1, 1) if data.x.dim() == 4 else (1, *data.x.shape[1:])  # as fit() makes them
        if standardizer is not None and {tuple(standardizer.mean.shape), tuple(standardizer.std.shape)} != {expected}:
            raise DlxError(f"the checkpoint's standardisation statistics have shape {tuple(standardizer.mean.shape)}, "
                           f"this data needs {expected}: the checkpoint belongs to another run")
        standardizer = (standardizer or Standardizer.fit(parts["train"][0])).to(device)  # applied batch by batch there
    else:
        standardizer = None
    if data.task == RECONSTRUCTION:  # the target is the input, made into one as it is batched (Splits.prepare)
        parts = {k: (x, x) for k, (x, _) in parts.items()}
    parts = {k: (x if isinstance(x, Rows) else x.to(device), y if isinstance(y, Rows) else y.to(device))
             for k, (x, y) in parts.items()}
    return Splits(data.spec(), parts, standardizer)


WHOLE_EPOCH_BYTES = 2**25  # a split up to 32 MB is shuffled as one copy an epoch (one gather: small batches run
# 3% faster than with a gather each); a larger one a batch at a time, so no second copy of it is ever in memory


class Batches:
    """Minibatches of in-memory tensors by indexing, never sample by sample.

    As the course prescribes: shuffle all data each epoch, then take minibatches in order.
    """

    def __init__(self, x: Tensor | Rows, y: Tensor | Rows, batch_size: int, shuffle: bool,
                 prepare: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.prepare = prepare  # stored examples -> what the model reads (Splits.prepare), one batch at a time

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.epoch(None)

    def epoch(self, generator: torch.Generator | None, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches of one epoch from batch `start` on; the order depends only on `generator`."""
        same = self.y is self.x  # an autoencoder's target is its input
        x, y, order = self.x, self.y, None
        if self.shuffle:
            order = torch.randperm(len(x), generator=generator).to(x.device)
            if x.shape.numel() * x.dtype.itemsize <= WHOLE_EPOCH_BYTES:  # one gather, then the batches are views
                x, y, order = x[order], (y if same else y[order]), None
        for i in range(start * self.batch_size, len(x), self.batch_size):
            rows = slice(i, i + self.batch_size) if order is None else order[i : i + self.batch_size]
            x_rows = x[rows]  # a view after the whole gather, else this batch's gather
            batch = x_rows, (x_rows if same else y[rows])
            yield self.prepare(*batch) if self.prepare is not None else batch
