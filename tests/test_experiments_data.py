"""The data-oriented experiments run to the end, and the oak line fits about as well as the scatter allows."""
from __future__ import annotations

import pytest

from dlx.config import load
from dlx.train import loop
from tests.conftest import EXPERIMENTS

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is faster


def train(name: str, runs_dir, *overrides: str) -> dict:
    return loop.start(load(EXPERIMENTS / f"{name}.yaml", ["train.device=cpu", *overrides]), runs_dir, quiet=True)[1]


def test_oak_regression_fits_a_line_through_the_scatter(runs_dir):
    test = train("oak_regression", runs_dir)["metrics"]["test"]
    assert test["r2"] > 0.85 and test["mae"] < 20  # years; the trees scatter +-15% around the growth law


def test_digits_augment_runs_to_the_end(runs_dir):
    summary = train("digits_augment", runs_dir, "train.epochs=2", "model.width=8", "model.hidden=32")
    assert summary["epochs"] == 2 and set(summary["metrics"]) == {"train", "val", "test"}
