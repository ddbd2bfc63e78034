"""What a config says about data, without torch: the task names, the `data.augment` and `data.fold` sections.

config.py validates with these, so reading a run's config (`dlx runs`) never loads the datasets or torch.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

CLASSIFICATION, REGRESSION = "classification", "regression"
RECONSTRUCTION = "reconstruction"  # the target is the input itself (autoencoders); compared like regression
LANGUAGE = "language"  # next-token prediction: inputs (B, T) token ids, outputs (B, T, vocabulary) logits
SEQ2SEQ = "seq2seq"  # a source sequence to a target sequence: inputs (B, S) and targets (B, T) token ids, padded

Jitter = Annotated[float, Field(ge=0.0, lt=1.0)]


class Augment(BaseModel):
    """The `data.augment` section: every entry off by default; applied to training batches only."""

    model_config = ConfigDict(extra="forbid")
    shift: Annotated[int, Field(ge=0, le=64)] = 0  # move by up to k pixels in x and y (the course: 1 on MNIST)
    hflip: bool = False  # mirror left-right with probability 1/2
    vflip: bool = False  # mirror top-bottom with probability 1/2
    crop: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0  # keep a random square of at least this side fraction, zoomed back; 1: off
    rotate: Annotated[float, Field(ge=0.0, le=180.0)] = 0.0  # rotate by up to +-this many degrees
    brightness: Jitter = 0.0  # multiply by a factor in [1-b, 1+b]
    contrast: Jitter = 0.0  # scale deviations from the image's mean by a factor in [1-c, 1+c]
    saturation: Jitter = 0.0  # scale deviations from the grey image by a factor in [1-s, 1+s] (3 channels)

    @property
    def geometric(self) -> bool:
        return bool(self.shift or self.hflip or self.vflip or self.crop < 1.0 or self.rotate)

    @property
    def colour(self) -> bool:
        return bool(self.brightness or self.contrast or self.saturation)


class Member(BaseModel):
    """Member `index` (1..k) of k runs made from one experiment."""

    model_config = ConfigDict(extra="forbid")
    k: Annotated[int, Field(ge=2, le=1000)]
    index: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _index_within_k(self) -> Member:
        if self.index > self.k:
            noun = type(self).__name__.lower()
            raise ValueError(f"{noun} index {self.index} is beyond k={self.k} ({noun}s are numbered 1..k)")
        return self


class Fold(Member):
    """The `data.fold` section: k-fold cross-validation, where fold `index` (1..k) of the examples outside
    the test split is the val split and the other k-1 folds are the train split."""


class Bag(Member):
    """The `data.bag` section: member `index` of a bagging committee of k, trained on a bootstrap resample of the
    train split: as many examples as it holds, drawn uniformly with replacement (about 1 - 1/e of them distinct),
    a draw fixed by the split's seed and the index. The val and test splits stay whole."""
