"""Small trained runs shared by the evaluation and run-management tests (session-scoped: each is trained once).

Import the fixtures into a test module to use them; every run is a narrow MLP or CNN trained for a few epochs.
"""
from __future__ import annotations

import functools
import io
from pathlib import Path

import pytest
from rich.console import Console

from tests.conftest import EXPERIMENTS

MLP = ["model.name=mlp", "model.sizes=32", "train.epochs=3", "train.device=cpu", "data.split_seed=0"]


@functools.cache
def train(runs: Path, name: str, *overrides: str) -> Path:
    """Train once per session: a fixture imported into several test modules is set up once per module, but
    this cache makes every module share the run."""
    from dlx.config import load
    from dlx.train.loop import start

    config = load(EXPERIMENTS / "digits_cnn.yaml", [*overrides, f"name={name}"])
    run, _ = start(config, runs, quiet=True, console=Console(file=io.StringIO()))
    return run.path


def shared(factory) -> Path:
    return factory.getbasetemp() / "trained-runs"


@pytest.fixture(scope="session")
def committee(tmp_path_factory) -> list[Path]:
    """Three digits MLPs on one split, differing in their seed (the third also in its learning rate)."""
    return [train(shared(tmp_path_factory), f"m{seed}", *MLP, f"seed={seed}", *(["optimizer.lr=0.003"] if seed == 3 else []))
            for seed in (1, 2, 3)]


@pytest.fixture(scope="session")
def digits_cnn(tmp_path_factory) -> Path:
    """A CNN, so that GradCAM has a conv layer to explain."""
    return train(shared(tmp_path_factory), "cnn", "model.width=4", "model.hidden=16", "train.epochs=1",
                 "train.device=cpu")


@pytest.fixture(scope="session")
def moons(tmp_path_factory) -> Path:
    """A two-class run, for the ROC curve and the threshold."""
    return train(shared(tmp_path_factory), "moons", "data.name=moons", "model.name=mlp", "model.sizes=16",
                 "eval.metrics=[accuracy]", "train.epochs=5", "train.device=cpu")


@pytest.fixture(scope="session")
def diabetes(tmp_path_factory) -> Path:
    """A regression run."""
    return train(shared(tmp_path_factory), "diabetes", "data.name=diabetes", "model.name=mlp",
                 "model.sizes=16", "loss.name=mse", "eval.metrics=[mse,mae]", "train.monitor=val/loss",
                 "train.epochs=3", "train.device=cpu")
