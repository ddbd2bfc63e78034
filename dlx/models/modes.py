"""Running a model outside training: eval mode and no gradients, then back to the mode it was in."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """In eval mode the model draws no dropout and changes no batch-norm statistics (and batch norm takes a
    single example); its training mode comes back even when the block raises."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)
