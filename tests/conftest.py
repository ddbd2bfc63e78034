"""Shared fixtures: a fast digits experiment and a folder for its runs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"

# a few epochs of a narrow CNN on digits: seconds on a CPU, still well above chance
FAST = ["train.epochs=3", "model.width=8", "model.hidden=32", "train.device=cpu"]
# digits_cnn.yaml with a 16-unit MLP in three batches an epoch: for tests of the loop's plumbing, not of learning
TINY_MLP = ["model.name=mlp", "model.sizes=16", "train.batch_size=512", "eval.metrics=[accuracy]", "train.device=cpu"]


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def fast_config():
    from dlx.config import load

    def make(*overrides: str, experiment: str = "digits_cnn.yaml"):
        return load(EXPERIMENTS / experiment, [*FAST, *overrides])

    return make


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run faster on one thread: a second only adds synchronisation, costly on a busy machine.
    Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
