"""`dlx export`: the file runs without dlx, with the preprocessing inside, and agrees with dlx on the test split."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dlx.cli import app
from dlx.evaluate import predict as evaluate_predict
from dlx.run.trained import open_trained
from tests.conftest import EXPERIMENTS, TRAINED

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
@pytest.mark.parametrize("name", list(TRAINED))
def test_check_passes_for_every_kind_of_run(trained_runs, tmp_path, name, fmt):
    out = tmp_path / f"model.{'pt' if fmt == 'torchscript' else 'onnx'}"
    result = runner.invoke(app, ["export", str(trained_runs[name]), "--format", fmt, "--out", str(out), "--check"])
    assert result.exit_code == 0, result.output
    difference = float(result.output.split("largest absolute difference ")[1].split(";")[0].split()[0])
    assert difference <= 1e-4
    if name != "oak_regression" and name != "conv_autoencoder":
        assert "identical predicted classes: 100.00%" in " ".join(result.output.split())


ONNX_ALONE = """
import json, sys
import numpy as np, onnxruntime
session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
meta = {k: json.loads(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
pixels = np.array(json.loads(sys.argv[2]), dtype=np.float32)[None]
probabilities = session.run(None, {"input": np.concatenate([pixels, pixels])})[0]
assert "dlx" not in sys.modules and "torch" not in sys.modules
print(json.dumps({"class": meta["class_names"][int(probabilities[0].argmax())], "shape": meta["input_shape"],
                  "run": meta["run"], "sum": float(probabilities[1].sum())}))
"""


def test_the_onnx_file_classifies_a_raw_image_without_dlx(trained_runs, tmp_path):
    run = trained_runs["digits_cnn"]
    out = tmp_path / "digits.onnx"
    assert runner.invoke(app, ["export", str(run), "--format", "onnx", "--out", str(out)]).exit_code == 0
    trained = open_trained(run)
    x, y = trained.data["test"]
    answers = evaluate_predict(trained, "test").argmax(1)
    i = int(torch.nonzero(answers == y)[0])  # an image dlx classifies correctly
    pixels = np.round(trained.standardizer.invert(x[i : i + 1])[0].numpy() * 255)  # raw 0-255 pixels, as a PNG holds them
    done = subprocess.run([sys.executable, "-c", ONNX_ALONE, str(out), json.dumps(pixels.tolist())],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["class"] == trained.spec.class_names[int(y[i])]
    assert answer["shape"] == ["batch", 1, 8, 8] and answer["run"] == "digits_cnn"
    assert answer["sum"] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_the_torchscript_file_carries_its_metadata(trained_runs, tmp_path):
    out = tmp_path / "iris.pt"
    assert runner.invoke(app, ["export", str(trained_runs["iris_mlp"]), "--out", str(out)]).exit_code == 0
    files = {"dlx.json": ""}
    module = torch.jit.load(str(out), _extra_files=files)
    meta = json.loads(files["dlx.json"])
    assert meta["class_names"] == ["setosa", "versicolor", "virginica"] and meta["input_shape"] == ["batch", 4]
    assert meta["config"]["name"] == "iris_mlp" and meta["dlx_version"]
    flowers = torch.tensor([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]])  # raw centimetres
    assert module(flowers).shape == (3, 3)


@pytest.mark.parametrize("args, message", [
    (["--format", "tflite"], "--format 'tflite': choose torchscript or onnx"),
    (["--checkpoint", "worst"], "choose best or last"),
])
def test_bad_options_are_one_line(trained_runs, args, message):
    result = runner.invoke(app, ["export", str(trained_runs["iris_mlp"]), *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_run_of_another_objective_is_refused(tmp_path):
    from dlx import build  # noqa: F401
    from dlx.config import load
    from dlx.train import loop

    run, _ = loop.start(load(EXPERIMENTS / "digits_vae.yaml", ["train.epochs=1", "train.device=cpu"]), tmp_path, quiet=True)
    for command in (["export", str(run.path)], ["predict", str(run.path), str(run.path / "config.yaml")]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and "needs a run trained with objective 'supervised'" in result.output, result.output


def test_a_language_model_is_refused_by_export_and_predict(tmp_path):
    from dlx import build  # noqa: F401
    from dlx.config import validate
    from dlx.train import loop

    (tmp_path / "t.txt").write_text("the cat sat on the mat.\n" * 40)
    config = validate({
        "name": "lm", "data": {"name": "text", "path": str(tmp_path / "t.txt"), "block_size": 8, "steps_per_epoch": 2,
                               "eval_windows": 4, "split": [0.8, 0.1, 0.1]},
        "model": {"name": "gpt", "width": 8, "heads": 2, "layers": 1}, "train": {"epochs": 1, "batch_size": 4, "device": "cpu"},
    })
    run, _ = loop.start(config, tmp_path / "runs", quiet=True)
    for command, message in ((["export", str(run.path)], "is a language model"),
                             (["predict", str(run.path), str(tmp_path / "t.txt")], "use `dlx generate")):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and message in result.output, result.output
