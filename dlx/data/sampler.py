"""Batches of P classes with K examples each, for metric learning: a triplet or a pair needs another example of the
anchor's class in the batch, which a plain shuffle of ten classes in batches of 32 often fails to give.

Every batch is drawn from the epoch's generator alone (the loop's data order, seeded by the run's seed and replayed
from the epoch's start on resume), by indexing in-memory tensors, never sample by sample: P classes without
replacement, then K examples of each without replacement. An epoch has as many batches as the plain shuffle would
have full ones, so it sees about as many examples. The batch is class after class (K of the first class, K of the
next, ...), so under --nproc each process's slice still holds whole groups of one class.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from dlx.errors import DlxError


class ClassBalancedBatches:
    """The same interface as dlx.data.base.Batches (len, epoch(generator, start)), for the loop and resume."""

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, per_class: int):
        classes, counts = torch.unique(y, return_counts=True)
        if batch_size % per_class:
            raise DlxError(f"train.batch_size {batch_size} is no multiple of objective.per_class {per_class}: a batch "
                           f"holds P classes of {per_class} examples each (e.g. train.batch_size={per_class * 8})")
        self.x, self.y, self.batch_size, self.per_class = x, y, batch_size, per_class
        self.classes_per_batch = batch_size // per_class
        if self.classes_per_batch > len(classes):
            raise DlxError(f"train.batch_size {batch_size} / objective.per_class {per_class} = "
                           f"{self.classes_per_batch} classes per batch, and the train split has {len(classes)}; "
                           f"lower train.batch_size or raise objective.per_class")
        if counts.min() < per_class:
            small = int(classes[counts.argmin()])
            raise DlxError(f"objective.per_class {per_class}: class {small} has {int(counts.min())} examples in the "
                           f"train split; lower objective.per_class")
        # the indices of each class's examples, one row per class, padded with -1 where a class has fewer
        self.counts = counts
        self.table = torch.full((len(classes), int(counts.max())), -1, dtype=torch.long)
        for row, c in enumerate(classes):
            members = torch.nonzero(y.cpu() == c).flatten()
            self.table[row, : len(members)] = members

    def __len__(self) -> int:
        return max(1, len(self.x) // self.batch_size)

    def epoch(self, generator: torch.Generator | None, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches of one epoch from batch `start` on; the order depends only on `generator`, whose draws for the
        batches before `start` are made and dropped, so a resumed epoch continues with the same batches."""
        num_classes, width = self.table.shape
        for i in range(len(self)):
            # P classes: the first P of a random permutation; K examples of each: the K largest of random keys,
            # padding never chosen (its key is below every real one). Drawn batch by batch: (P, width) at a time.
            classes = torch.rand(num_classes, generator=generator).argsort()[: self.classes_per_batch]
            keys = torch.rand(self.classes_per_batch, width, generator=generator)
            if i < start:
                continue
            padding = torch.arange(width) >= self.counts[classes][:, None]  # (P, width)
            picked = keys.masked_fill(padding, -1.0).topk(self.per_class, dim=1).indices  # (P, K)
            index = self.table[classes[:, None], picked].flatten().to(self.x.device)  # (P*K,), class after class
            yield self.x[index], self.y[index]
