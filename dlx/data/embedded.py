"""Small real datasets that ship with scikit-learn: no download, always available."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from dlx.data.base import CLASSIFICATION, REGRESSION, ArrayData, Column
from dlx.registry import datasets


def _scikit_learn():
    """scikit-learn's datasets module, imported when a set is loaded (listing the datasets needs none of it)."""
    from sklearn import datasets

    return datasets


def _table(bunch, task: str) -> ArrayData:
    x = torch.as_tensor(np.asarray(bunch.data, dtype=np.float32))
    columns = tuple(Column(str(name)) for name in bunch.feature_names)
    if task == CLASSIFICATION:
        y = torch.as_tensor(bunch.target, dtype=torch.long)
        return ArrayData(x, y, task, tuple(str(n) for n in bunch.target_names), columns=columns, target="target")
    return ArrayData(x, torch.as_tensor(bunch.target, dtype=torch.float32).reshape(len(x), -1), task, columns=columns,
                     target="target")


def _shipped(name: str) -> Path:
    """A data file that scikit-learn ships, found without importing scikit-learn (half a second on its own)."""
    return Path(importlib.util.find_spec("sklearn").submodule_search_locations[0]) / "datasets" / "data" / name


@datasets.register("digits", "8x8 grey images of handwritten digits (1797, 10 classes); scikit-learn, embedded")
def digits() -> ArrayData:
    # the file load_digits reads, read as it reads it: the default experiment starts without scikit-learn's import
    rows = np.loadtxt(_shipped("digits.csv.gz"), delimiter=",")  # (1797, 65): 64 pixels in 0..16, then the digit
    images = torch.as_tensor(rows[:, :-1].reshape(-1, 1, 8, 8), dtype=torch.float32) / 16.0  # (N, 1, 8, 8) in [0, 1]
    return ArrayData(images, torch.as_tensor(rows[:, -1], dtype=torch.long), CLASSIFICATION,
                     tuple(str(n) for n in range(10)))


@datasets.register("iris", "Fisher's iris flowers: 4 measurements, 3 species (150); scikit-learn, embedded")
def iris() -> ArrayData:
    return _table(_scikit_learn().load_iris(), CLASSIFICATION)


@datasets.register("wine", "wines from three cultivars: 13 chemical measurements, 3 classes (178); scikit-learn, embedded")
def wine() -> ArrayData:
    return _table(_scikit_learn().load_wine(), CLASSIFICATION)


@datasets.register("breast_cancer", "Wisconsin breast tumours: 30 cell-nucleus features, malignant or benign (569); "
                                    "scikit-learn, embedded")
def breast_cancer() -> ArrayData:
    return _table(_scikit_learn().load_breast_cancer(), CLASSIFICATION)


@datasets.register("diabetes", "diabetes progression after one year from 10 baseline measurements (442, regression); "
                               "scikit-learn, embedded")
def diabetes() -> ArrayData:
    return _table(_scikit_learn().load_diabetes(), REGRESSION)
