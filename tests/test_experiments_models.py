"""The course's model experiments: every one on embedded data trains to the end, and the lessons hold."""
from __future__ import annotations

from pathlib import Path

import pytest
from torchvision import datasets as tv
from typer.testing import CliRunner

from dlx.api import open_run
from dlx.cli import app
from dlx.config import load
from dlx.errors import DlxError
from dlx.train import loop
from tests.conftest import EXPERIMENTS
from tests.test_datasets import write_cifar, write_image_folder, write_mnist_like

EMBEDDED = ["xor_mlp", "xor_perceptron", "iris_mlp", "digits_mlp", "moons_mlp", "digits_autoencoder",
            "bitpattern_rnn", "bitpattern_conv1d", "runsum_lstm", "digits_vae"]
DOWNLOADED = ["mnist_small_cnn", "mnist_strong_cnn", "fashion_mnist_cnn", "cifar10_vanilla_cnn", "cifar10_resnet20",
              "transfer_resnet18", "mnist_conv_vae"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is faster


def train(name: str, runs_dir, *overrides: str) -> dict:
    config = load(EXPERIMENTS / f"{name}.yaml", ["train.device=cpu", *overrides])
    return loop.start(config, runs_dir, quiet=True)[1]


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_experiment_runs_to_the_end(name, runs_dir):
    summary = train(name, runs_dir, "train.epochs=2")
    assert summary["epochs"] == 2 and set(summary["metrics"]) == {"train", "val", "test"}


@pytest.mark.parametrize("name", DOWNLOADED)
def test_downloaded_experiment_validates(name):
    result = CliRunner().invoke(app, ["config", str(EXPERIMENTS / f"{name}.yaml")])
    assert result.exit_code == 0, result.output
    assert f"name: {name}" in result.output


def tiny_data(name: str, root: Path) -> list[str]:
    """Overrides that point an experiment at a few images written in its dataset's real format."""
    if name.startswith("cifar10"):
        return [f"data.root={write_cifar(root, tv.CIFAR10, n=20)}"]
    if name == "transfer_resnet18":  # no ImageNet weights offline: the pretrained path has its own tests
        folder = write_image_folder(root / "images", classes=("cat", "dog", "owl"), per_class=8)
        return [f"data.path={folder}", "data.size=32", "model.pretrained=false"]
    kind = tv.FashionMNIST if name.startswith("fashion") else tv.MNIST
    return [f"data.root={write_mnist_like(root, kind, n_train=60, n_test=10)}"]


@pytest.mark.parametrize("name", DOWNLOADED)
def test_downloaded_experiment_trains_on_tiny_files_in_the_real_format(name, tmp_path, runs_dir):
    summary = train(name, runs_dir, "train.epochs=1", *tiny_data(name, tmp_path / "data"))
    assert summary["epochs"] == 1 and set(summary["metrics"]) == {"train", "val", "test"}


def test_xor_needs_a_hidden_layer(runs_dir):
    mlp = train("xor_mlp", runs_dir)["metrics"]["test"]["accuracy"]
    perceptron = train("xor_perceptron", runs_dir)["metrics"]["test"]["accuracy"]
    assert mlp == 1.0
    assert perceptron < 0.8  # one line separates at most three of XOR's four corners


def test_bitpattern_rnn_finds_1011(runs_dir):
    summary = train("bitpattern_rnn", runs_dir)
    assert summary["metrics"]["test"]["accuracy"] >= 0.99


def test_one_convolutional_neuron_learns_the_kernel_1011(runs_dir):
    summary = train("bitpattern_conv1d", runs_dir)
    assert summary["metrics"]["test"]["accuracy"] == 1.0
    model = open_run(runs_dir / "bitpattern_conv1d").model()
    kernel = model.kernels.detach().flatten()  # the one filter's 4 weights, in stream order
    decision = (model.head.weight[1] - model.head.weight[0]).item()  # how its maximum pushes towards "present"
    # read with the decision's sign, the weights at the 1s of 1011 are positive and the one at its 0 negative
    # (any other window scores below 1011 only then: 1111 adds the 0's weight, 0011 drops the first 1's)
    signed = kernel * (1.0 if decision > 0 else -1.0)
    assert signed[[0, 2, 3]].min() > 0 > signed[1], kernel


def test_runsum_lstm_learns_the_running_sum(runs_dir):
    summary = train("runsum_lstm", runs_dir)
    assert summary["metrics"]["test"]["accuracy"] >= 0.99  # every step of every test stream


def test_autoencoder_shows_reconstructions_in_tensorboard(runs_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    summary = train("digits_autoencoder", runs_dir, "train.epochs=3")
    events = EventAccumulator(str(runs_dir / "digits_autoencoder"), size_guidance={"images": 0})
    events.Reload()
    grids = events.Images("reconstructions/val")
    assert len(grids) == 3  # one per epoch
    # 8 columns; 2 rows of digits over 2 rows of their reconstructions; 8x8 images with 2-pixel borders
    assert (grids[0].width, grids[0].height) == (8 * 10 + 2, 4 * 10 + 2)
    assert summary["metrics"]["test"]["mse"] < 0.6  # standardised pixels: 1.0 is predicting the mean
    report = CliRunner().invoke(app, ["evaluate", str(runs_dir / "digits_autoencoder"), "--json"])
    assert report.exit_code == 0, report.output
    assert '"mse"' in report.output


@pytest.mark.parametrize("name, override, problem", [
    ("bitpattern_rnn", "data.per_step=true", "these labels are per step: use .* output: steps"),
    ("runsum_lstm", "data.per_step=false", "these labels are one per example: use output: last or mean"),
])
def test_outputs_that_do_not_fit_the_targets_are_a_clear_error(name, override, problem, runs_dir):
    with pytest.raises(DlxError, match=problem):
        train(name, runs_dir, override)
    assert not runs_dir.exists()  # found while building, before the run folder
