"""Data read from disk batch by batch, for datasets larger than memory (`data.stream: true`, or when they do not fit).

Only the labels are held in memory. A torch DataLoader's worker processes read and decode the examples of each
batch as uint8, pinned when training on CUDA, a few batches ahead; the batch becomes floats, standardised, on the
training device, where augmentation follows as for data in memory. The order of an epoch is the permutation the
in-memory path draws from the same generator, so a streamed run sees the same batches, and a resumed run
replays its epoch's order and starts reading at the batch where it stopped.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from dlx.data.base import CLASSIFICATION, Bag, Column, DataSpec, Splits, Standardizer, pick_indices
from dlx.data.settings import Fold
from dlx.errors import DlxError

PREFETCH = 2  # batches each worker reads ahead: enough to hide a batch's reading, few to hold
STATISTICS_FROM = 50_000  # train examples (evenly spaced) that estimate the standardisation: enough for a mean


class Examples(Protocol):
    """Examples on disk, read one by one by index (in a worker process). Examples kept in shards also say which
    shard each is in (`shard_of`, a list), so that each rank of a process group reads shards of its own."""

    in_shape: tuple[int, ...]

    def __len__(self) -> int: ...

    def read(self, i: int) -> np.ndarray: ...  # uint8 (C, H, W) pixels, or float32 features


@dataclass
class StreamData:
    """A dataset read from disk as it trains: its examples and, in memory, their labels."""

    examples: Examples
    y: Tensor  # (N,) class indices, or (N, k) regression targets
    class_names: tuple[str, ...]
    test: tuple[Examples, Tensor] | None = None
    source: str = ""
    task: str = CLASSIFICATION
    columns: tuple[Column, ...] = ()  # tables: as ArrayData's
    target: str = ""

    def spec(self) -> DataSpec:
        if self.task == CLASSIFICATION:
            return DataSpec(self.examples.in_shape, self.task, num_classes=len(self.class_names),
                            class_names=self.class_names)
        return DataSpec(self.examples.in_shape, self.task, out_features=self.y.shape[1])


def announce(what: str, nbytes: int) -> None:
    """The one line saying that a dataset streams because it would not fit in memory."""
    print(f"note: {what} would take {nbytes / 2**30:.1f} GB, more than half the free memory: streaming from disk "
          f"(data.stream: true)", file=sys.stderr)


def _row(examples: Examples, i: int) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(examples.read(i)))


class _Reading(torch.utils.data.Dataset):
    """What a worker process reads: the examples at `indices`, as tensors (uint8 pixels, float32 features)."""

    def __init__(self, examples: Examples, indices: Tensor):
        self.examples, self.indices = examples, indices.tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Tensor:
        return _row(self.examples, self.indices[i])


class _Order(torch.utils.data.Sampler):
    """The batches of positions to read, set before each epoch; the loader iterates it in the main process, so
    persistent workers read whatever order the epoch sets."""

    def __init__(self):
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def workers() -> int:
    from dlx.data.decode import cores

    return cores()


def loader(reading: _Reading, **settings) -> torch.utils.data.DataLoader:
    """A DataLoader over `reading` with a worker per core. It draws its workers' seeds from a generator of its own:
    from the global one it would change the model's initialisation and dropout (the workers draw nothing)."""
    count = workers()
    return torch.utils.data.DataLoader(reading, num_workers=count, persistent_workers=count > 0,
                                       prefetch_factor=PREFETCH if count else None,
                                       generator=torch.Generator().manual_seed(0), **settings)


def _read_by(batches: torch.utils.data.DataLoader) -> Iterator[Tensor]:
    """The loader's batches. A DlxError a worker raised (a damaged file) is its one line again: the DataLoader
    raises it anew in this process with the worker's traceback as its message, whose last line is the original."""
    try:
        yield from batches
    except DlxError as e:
        raise DlxError(str(e).rstrip().splitlines()[-1].partition("DlxError: ")[2] or str(e)) from None


class DiskExamples:
    """One split's examples as tensor-like rows: len(), shape and indexing read them from disk, as floats on the
    device, standardised. Figures, TensorBoard and the thread probe take a few rows this way."""

    def __init__(self, examples: Examples, indices: Tensor, device: torch.device, standardizer: Standardizer | None):
        self.examples, self.indices, self.device, self.standardizer = examples, indices, device, standardizer
        self.shape = torch.Size((len(indices), *examples.in_shape))
        self.dtype = torch.float32

    def __len__(self) -> int:
        return len(self.indices)

    def dim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: int | slice | Tensor) -> Tensor:
        if isinstance(key, int):
            return self[key : key + 1 if key != -1 else None][0]
        rows = self.indices[key].tolist()
        raw = torch.stack([_row(self.examples, i) for i in rows]) if rows else torch.empty((0, *self.examples.in_shape))
        return self.to_device(raw)

    def to_device(self, raw: Tensor) -> Tensor:
        """A batch as the model takes it: floats on the device (pixels in [0, 1]), standardised."""
        x = raw.to(self.device, non_blocking=True).float()
        if raw.dtype == torch.uint8:
            x.div_(255)
        return x if self.standardizer is None else self.standardizer.apply_(x)


def _world() -> tuple[int, int]:
    """(rank, ranks) of the process group training joined; (0, 1) in one process."""
    import torch.distributed as dist

    return (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)


class StreamBatches:
    """Minibatches read from disk: the same order as base.Batches draws from the same generator.

    Training batches in a process group are read per rank: each rank reads only its part of every global batch,
    the examples of its own shards (shard i belongs to rank i mod ranks) or else the slice World.shard would take,
    and `share` says what World.shard would: the factor that makes the ranks' averaged gradients the gradient of
    the whole batch's mean loss."""

    def __init__(self, x: DiskExamples, y: Tensor, batch_size: int, shuffle: bool,
                 world: tuple[int, int] | None = None):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.rank, self.ranks = world or (_world() if shuffle else (0, 1))
        self.per_rank = self.ranks > 1
        self.share = 1.0  # of the batch last yielded
        self.order = _Order()
        self.loader: torch.utils.data.DataLoader | None = None

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.epoch(None)

    def _loader(self) -> torch.utils.data.DataLoader:
        """Built at the first epoch and kept: its worker processes live as long as the batches."""
        if self.loader is None:
            self.loader = loader(_Reading(self.x.examples, self.x.indices), batch_sampler=self.order,
                                 pin_memory=self.x.device.type == "cuda")
        return self.loader

    def _parts(self, batches: list[Tensor]) -> list[list[int]]:
        """This rank's positions of each global batch."""
        shard_of = getattr(self.x.examples, "shard_of", None)
        if shard_of is None:
            return [batch.tensor_split(self.ranks)[self.rank].tolist() for batch in batches]
        owner = torch.as_tensor(shard_of)[self.x.indices] % self.ranks
        return [batch[owner[batch] == self.rank].tolist() for batch in batches]

    def epoch(self, generator: torch.Generator | None, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches of one epoch from batch `start` on; the order depends only on `generator`."""
        n = len(self.x)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        batches = order.split(self.batch_size)[start:]
        parts = self._parts(batches) if self.per_rank else [batch.tolist() for batch in batches]
        if any(not part for part in parts):
            raise DlxError(f"train.batch_size={self.batch_size} leaves rank {self.rank} of {self.ranks} a batch "
                           f"without examples (an epoch's short last batch, or its shards' part of one); give another "
                           f"batch size or fewer processes")
        self.order.batches = parts  # the loader reads them in this order
        for batch, part, raw in zip(batches, parts, _read_by(self._loader())):
            self.share = self.ranks * len(part) / len(batch)
            yield self.x.to_device(raw), self.y[part]


@dataclass
class StreamSplits(Splits):
    """Train, val and test as DiskExamples with their labels on the device; batches stream."""

    made: dict[tuple[str, int, bool], StreamBatches] = field(default_factory=dict)

    def __getitem__(self, split: str) -> tuple[Examples, Tensor]:
        """A split's examples as DiskExamples: indexing one reads those examples as the model reads them."""
        return self.parts[split]

    def first(self, split: str, n: int) -> tuple[Tensor, Tensor]:
        x, y = self.parts[split]
        return x[:n], y[:n]

    def batches(self, split: str, batch_size: int, shuffle: bool = False) -> StreamBatches:
        """The same object for the same arguments: its worker processes serve every epoch's evaluation."""
        key = (split, batch_size, shuffle)
        if key not in self.made:
            self.made[key] = StreamBatches(*self.parts[split], batch_size, shuffle)
        return self.made[key]


def _statistics(examples: Examples, indices: Tensor) -> Standardizer:
    """The mean and standard deviation of each channel (images) or feature (tables) over the train split, as
    Standardizer.fit estimates them, from up to STATISTICS_FROM examples evenly spaced, read once through the
    workers a small batch at a time and added up in float64 (pixels: exactly, as whole numbers in int64)."""
    if len(indices) > STATISTICS_FROM:
        indices = indices[torch.linspace(0, len(indices) - 1, STATISTICS_FROM).long()]
    image = len(examples.in_shape) == 3
    width = examples.in_shape[0]
    total = torch.zeros(width, dtype=torch.int64 if image else torch.float64)
    squares = torch.zeros_like(total)
    for raw in _read_by(loader(_Reading(examples, indices), batch_size=32)):
        values = raw.transpose(0, 1).reshape(width, -1).to(torch.int32) if image else raw.double().T
        total += values.sum(dim=1)
        squares += values.square().sum(dim=1)
    count = len(indices) * (math.prod(examples.in_shape[1:]) if image else 1)
    scale = 255 if image else 1
    mean = total.double() / count
    var = (squares.double() - count * mean.square()) / max(count - 1, 1)
    shape = (1, width, 1, 1) if image else (1, width)
    return Standardizer((mean / scale).float().view(shape),
                        (var.clamp_min(0).sqrt() / scale).float().view(shape).clamp_min(1e-8))


def stream_splits(data: StreamData, fractions: tuple[float, float, float], seed: int, standardize: bool,
                  device: torch.device, standardizer: Standardizer | None = None, fold: Fold | None = None,
                  bag: Bag | None = None) -> StreamSplits:
    """The splits of make_splits (the same indices for the same labels and seed), read from disk."""
    picked = pick_indices(data.y, data.task, fractions, seed, data.test is not None, fold, bag)
    sources: dict[str, tuple[Examples, Tensor, Tensor]] = {
        split: (data.examples, idx, data.y[idx]) for split, idx in zip(("train", "val", "test"), picked)}
    if data.test is not None:
        sources["test"] = (data.test[0], torch.arange(len(data.test[1])), data.test[1])
    if standardize and standardizer is None:
        standardizer = _statistics(data.examples, picked[0])
    if not standardize:
        standardizer = None
    parts = {split: (DiskExamples(examples, idx, device, standardizer), y.to(device))
             for split, (examples, idx, y) in sources.items()}
    return StreamSplits(data.spec(), parts, standardizer)

