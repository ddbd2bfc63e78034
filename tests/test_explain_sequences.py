"""`dlx explain` on sequence classifiers (B, T, F): saliency, SmoothGrad and occlusion over time steps x features,
drawn as heat maps; attention maps for models with the attention hook; methods that cannot apply refused in one
line when asked for, skipped with a line by --method all; per-step models explained at a step."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from dlx.cli import app
from dlx.data.base import CLASSIFICATION, DataSpec
from dlx.registry import explainers, models
from tests.conftest import EXPERIMENTS

pytestmark = pytest.mark.usefixtures("one_thread")

# every sequence experiment, shortened: a recurrent net on the last state, an LSTM answering at every step, a conv1d
EXPERIMENT_RUNS = {
    "bitpattern_rnn": ("bitpattern_rnn.yaml", ["data.n=400", "train.epochs=2"], (16, 1)),
    "runsum_lstm": ("runsum_lstm.yaml", ["data.n=400", "train.epochs=1", "model.hidden=16"], (8, 10)),
    "bitpattern_conv1d": ("bitpattern_conv1d.yaml", ["data.n=400", "train.epochs=2"], (16, 1)),
}
SUITED = ("saliency", "smoothgrad", "occlusion")
UNSUITED = {"gradcam": "needs image inputs", "lime": "needs image or table inputs, but this model takes sequences",
            "classviz": "needs image inputs", "filters": "needs image inputs",
            "attention": "needs a model with attention, and this one has none"}
FAST = {"smoothgrad": ["--set", "smoothgrad.samples=4"]}


def dlx(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, one_thread) -> dict[str, Path]:
    from dlx.config import load
    from dlx.train import loop

    root = tmp_path_factory.mktemp("explain-sequences") / "runs"
    made = {}
    for name, (experiment, overrides, _) in EXPERIMENT_RUNS.items():
        config = load(EXPERIMENTS / experiment, [*overrides, "train.device=cpu"])
        made[name], _ = loop.start(config, root, quiet=True, console=Console(file=io.StringIO()))
    return {name: run.path for name, run in made.items()}


def test_every_method_is_either_suited_or_refused_for_sequences():
    assert set(explainers.names()) == {*SUITED, *UNSUITED}


@pytest.mark.parametrize("run", EXPERIMENT_RUNS)
@pytest.mark.parametrize("method", SUITED)
def test_a_suited_method_maps_every_step_and_feature(runs, tmp_path, run, method):
    result = dlx("explain", runs[run], "-m", method, "--index", "1", "--out", tmp_path, *FAST.get(method, []))
    assert result.exit_code == 0, result.output
    folder = tmp_path / "test-1"
    report = json.loads((folder / "explanation.json").read_text())
    values = np.load(folder / f"{method}.npy")
    assert values.shape == EXPERIMENT_RUNS[run][2] and np.isfinite(values).all() and np.abs(values).max() > 0
    assert report["methods"][method]["arrays"] == [f"{method}.npy"] and "Traceback" not in result.output
    with Image.open(folder / f"{method}.png") as panel:
        assert len(np.unique(np.asarray(panel.convert("L")))) > 20  # the input and the map, drawn
    assert ("step" in report) == (run == "runsum_lstm")


@pytest.mark.parametrize("run", EXPERIMENT_RUNS)
@pytest.mark.parametrize("method", UNSUITED)
def test_a_method_that_cannot_apply_is_one_line_and_exit_2(runs, tmp_path, run, method):
    result = dlx("explain", runs[run], "-m", method, "--index", "0", "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and UNSUITED[method] in result.stderr, result.stderr
    assert f"use {', '.join(SUITED)}" in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("run", EXPERIMENT_RUNS)
def test_all_runs_the_suited_methods_and_says_why_it_skips_each_other(runs, tmp_path, run):
    result = dlx("explain", runs[run], "--index", "0", "--out", tmp_path, *FAST["smoothgrad"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "test-0" / "explanation.json").read_text())
    assert list(report["methods"]) == list(SUITED) and report["comparison"] == "comparison.png"
    skipped = [line for line in result.stderr.splitlines() if line.startswith("note: skipped")]
    assert [line.split()[2].rstrip(":") for line in skipped] == list(UNSUITED)
    assert all(UNSUITED[line.split()[2].rstrip(":")] in line for line in skipped)


@pytest.mark.parametrize("run, layer, shape", [("bitpattern_rnn", "rnn", "(1, 16, 32)"),
                                               ("runsum_lstm", "rnn", "(1, 8, 16)"),
                                               ("bitpattern_conv1d", "features.0", "(1, 1, 13)")])
def test_list_layers_of_a_sequence_model_shows_its_layers(runs, run, layer, shape):
    result = dlx("explain", runs[run], "--list-layers")
    assert result.exit_code == 0, result.output
    assert any(layer in line.split() and shape in line for line in result.stdout.splitlines()), result.stdout


def test_a_per_step_model_is_explained_at_the_step_asked_for(runs, tmp_path):
    from dlx.run.trained import open_trained

    result = dlx("explain", runs["runsum_lstm"], "-m", "occlusion", "--index", "2", "--step", "3", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "test-2" / "explanation.json").read_text())
    trained = open_trained(runs["runsum_lstm"])
    x, y = trained.data["test"]
    with torch.no_grad():
        logits = trained.model(x[2:3])[0, :, 3]
    assert report["step"] == 3 and report["true_class"] == str(int(y[2, 3]))
    assert report["predicted"]["index"] == int(logits.argmax())
    occluded = np.load(tmp_path / "test-2" / "occlusion.npy")
    assert not occluded[4:].any()  # what comes after step 3 cannot change the answer at step 3


@pytest.mark.parametrize("run, step, message", [("runsum_lstm", 8, "answers at steps 0..7"),
                                                ("runsum_lstm", -1, "answers at steps 0..7"),
                                                ("bitpattern_rnn", 0, "answers once per sample")])
def test_a_step_the_model_has_not_is_one_line(runs, tmp_path, run, step, message):
    result = dlx("explain", runs[run], "-m", "saliency", "--index", "0", "--step", step, "--out", tmp_path / "out")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.output
    assert not (tmp_path / "out").exists()


def test_a_model_with_the_attention_hook_gets_its_attention_maps(runs, tmp_path, monkeypatch):
    """The hook is a method of the model: attention_maps(x) -> {name: (B, rows, columns)}."""
    from dlx.models.recurrent import Recurrent

    def attention_maps(self, x):
        steps = x.shape[1]
        scores = torch.arange(steps, dtype=torch.float32).expand(len(x), 1, steps)
        return {"pooling": scores.softmax(dim=-1), "self": torch.eye(steps).expand(len(x), steps, steps)}

    monkeypatch.setattr(Recurrent, "attention_maps", attention_maps, raising=False)
    result = dlx("explain", runs["bitpattern_rnn"], "--index", "0", "--out", tmp_path, *FAST["smoothgrad"])
    assert result.exit_code == 0, result.output
    folder = tmp_path / "test-0"
    report = json.loads((folder / "explanation.json").read_text())["methods"]["attention"]
    assert report["params"]["maps"] == ["pooling", "self"] and report["arrays"] == ["attention.npy", "attention_self.npy"]
    assert np.allclose(np.load(folder / "attention.npy").sum(axis=-1), 1.0)
    assert np.array_equal(np.load(folder / "attention_self.npy"), np.eye(16))
    assert (folder / "attention.png").stat().st_size > 2000


def test_occlusion_finds_the_1011_that_a_convolutional_neuron_detects():
    """The notes' neuron by hand (kernel 1, -1, 1, 1; it fires only on 1011): covering a bit of the one occurrence
    lowers the 'contains' logit, covering any other bit changes nothing."""
    entry = models.get("conv1d")
    model = entry.build(DataSpec((10, 1), CLASSIFICATION, num_classes=2),
                        **entry.resolve({"channels": 1, "kernel": 4, "activation": "relu"}, "model")).eval()
    with torch.no_grad():
        model.kernels.copy_(torch.tensor([1.0, -1.0, 1.0, 1.0]).view(1, 1, 4))
        model.features[0].bias.fill_(-2.0)  # 1011 gives 1, every other window at most 0
        model.head.weight.copy_(torch.tensor([[0.0], [1.0]]))
        model.head.bias.zero_()
    stream = torch.tensor([0, 0, 1, 0, 1, 1, 0, 0, 0, 1.0]).view(1, 10, 1)  # 1011 at steps 2..5
    drop = explainers.get("occlusion").build(model, stream, 1).raw[:, 0]
    assert torch.allclose(drop, torch.tensor([0, 0, 1.0, 0, 1, 1, 0, 0, 0, 0]))  # covering the 0 at step 3 leaves 1011
