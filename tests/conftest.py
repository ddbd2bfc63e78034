"""Shared fixtures: a fast digits experiment and a folder for its runs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# tests never reach the internet: datasets read what tests write, and tests/test_download.py serves its own files
os.environ.setdefault("DLX_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"

# a few epochs of a narrow CNN on digits: seconds on a CPU, still well above chance
FAST = ["train.epochs=3", "model.width=8", "model.hidden=32", "train.device=cpu"]
# digits_cnn.yaml with a 16-unit MLP in three batches an epoch: for tests of the loop's plumbing, not of learning
TINY_MLP = ["model.name=mlp", "model.sizes=16", "train.batch_size=512", "eval.metrics=[accuracy]", "train.device=cpu"]


def fast(*overrides: str) -> list[str]:
    """FAST, then `overrides`. FAST's model settings are the CNN's: a test that switches the model sets its own (a
    setting the new model does not take is an error, not dropped)."""
    switched = any(o.startswith("model.name=") for o in overrides)
    return [*(o for o in FAST if not (switched and o.startswith("model."))), *overrides]


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def fast_config():
    from dlx.config import load

    def make(*overrides: str, experiment: str = "digits_cnn.yaml"):
        return load(EXPERIMENTS / experiment, fast(*overrides))

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


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


# every device this machine may train on; a test taking `device` runs once on each, marked with the device's
# name, so `pytest -m cuda` runs exactly the CUDA variants (bench/gpu_suite.py does) and a machine without
# CUDA reports them as skipped
DEVICES = [
    pytest.param("cpu", marks=pytest.mark.cpu, id="cpu"),
    pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not _cuda_available(), reason="no CUDA device")],
                 id="cuda"),
]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """The name of a device to train on: "cpu", and "cuda" where there is one."""
    return request.param


# tiny trained runs shared by the predict, export and API tests: seconds in all
TRAINED = {
    "digits_cnn": ("digits_cnn.yaml", FAST),
    "digits_mlp": ("digits_mlp.yaml", ["train.epochs=3", "model.sizes=32", "train.device=cpu"]),
    "iris_mlp": ("iris_mlp.yaml", ["train.epochs=20", "train.device=cpu"]),
    "oak_regression": ("oak_regression.yaml", ["train.epochs=20", "train.device=cpu"]),
    "conv_autoencoder": ("digits_autoencoder.yaml", ["model.name=conv_autoencoder", "model.channels=8-4",
                                                     "train.epochs=2", "train.device=cpu"]),
}


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory) -> dict[str, Path]:
    """Run folders of TRAINED by name, trained on one thread."""
    import torch

    from dlx.config import load
    from dlx.train import loop

    root = tmp_path_factory.mktemp("trained") / "runs"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {name: loop.start(load(EXPERIMENTS / file, [*overrides, f"name={name}"]), root, quiet=True)[0].path
                for name, (file, overrides) in TRAINED.items()}
    finally:
        torch.set_num_threads(threads)
