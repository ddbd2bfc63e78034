"""Datasets: each module registers one family in dlx.registry.datasets on import."""
from dlx.data import corpora, embedded, files, oak, sequences, synthetic, vision  # noqa: F401
from dlx.data.base import CLASSIFICATION, REGRESSION, ArrayData, Batches, DataSpec, Splits, make_splits

__all__ = ["CLASSIFICATION", "REGRESSION", "ArrayData", "Batches", "DataSpec", "Splits", "make_splits"]
