"""`dlx explain` on real trained runs: what it writes holds what it claims, the maps depend on what the model
learned (a sanity test), and every bad input is one line and exit code 2."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import spearmanr
from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator
from typer.testing import CliRunner

from dlx.cli import app
from dlx.explain.base import to_input_size
from dlx.explain.inputs import read_image
from dlx.registry import explainers
from dlx.run.trained import open_trained
from tests.conftest import EXPERIMENTS, fast

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()
METHODS = ("saliency", "smoothgrad", "gradcam", "occlusion", "lime", "classviz", "filters")


def dlx(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, one_thread) -> dict[str, Path]:
    """A digits CNN, a digits MLP (no conv layer) and an iris MLP (a table model), a few seconds each."""
    from dlx.config import load
    from dlx.train import loop

    root = tmp_path_factory.mktemp("explain") / "runs"
    variants = {
        "cnn": [],
        "mlp": ["model.name=mlp", "model.sizes=32"],
        "iris": ["data.name=iris", "model.name=mlp", "model.sizes=16", "eval.metrics=[accuracy]"],
    }
    made = {}
    for name, overrides in variants.items():
        run, _ = loop.start(load(EXPERIMENTS / "digits_cnn.yaml", [*fast(*overrides), f"name={name}"]), root, quiet=True)
        made[name] = run.path
    return made


@pytest.fixture(scope="module")
def explained(runs) -> tuple[Path, object]:
    result = dlx("explain", runs["cnn"], "--method", "all", "--index", "0")
    assert result.exit_code == 0, result.output
    folder = runs["cnn"] / "explanations" / "test-0"
    assert str(folder) in result.stdout
    return folder, json.loads((folder / "explanation.json").read_text())


def test_all_writes_a_panel_per_method_and_a_comparison(explained):
    folder, report = explained
    assert list(report["methods"]) == list(METHODS)
    for method in ("saliency", "smoothgrad", "gradcam", "occlusion", "lime"):
        with Image.open(folder / f"{method}.png") as panel:
            assert panel.size == (1300, 340)  # four views side by side: input, raw, rescaled, overlay
            assert len(np.unique(np.asarray(panel.convert("L")))) > 20  # a picture, not a blank
        assert report["methods"][method]["figure"] == f"{method}.png"
    for name in ("classviz.png", "filters.png", "comparison.png"):
        assert (folder / name).stat().st_size > 2000
    assert report["comparison"] == "comparison.png"


def test_the_json_tells_the_prediction_probabilities_and_target(runs, explained):
    _, report = explained
    trained = open_trained(runs["cnn"])
    x, y = trained.data["test"]
    with torch.no_grad():
        probabilities = trained.model(x[:1])[0].softmax(dim=0)
    assert report["predicted"]["index"] == int(probabilities.argmax())
    assert report["target"]["index"] == report["predicted"]["index"]  # --target predicted
    assert report["true_class"] == str(int(y[0]))
    assert np.allclose(list(report["probabilities"].values()), probabilities.numpy(), atol=1e-6)
    assert sum(report["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    lime = report["methods"]["lime"]["params"]
    assert lime["samples"] == 1000 and lime["kernel_width"] == 0.25 and lime["seed"] == 0
    assert report["methods"]["gradcam"]["params"]["layer"] == "features.4"  # the last conv layer


def test_the_arrays_are_the_methods_results(runs, explained):
    folder, report = explained
    trained = open_trained(runs["cnn"])
    x = trained.data["test"][0][:1]
    target = report["target"]["index"]
    saliency = explainers.get("saliency").build(trained.model, x, target)
    assert np.array_equal(np.load(folder / "saliency.npy"), saliency.raw.numpy())
    gradcam = np.load(folder / "gradcam.npy")
    assert gradcam.shape == (4, 4) and gradcam.min() >= 0  # the layer's resolution, after the ReLU
    sigma = report["methods"]["gradcam"]["rescaled"]["smoothing_sigma_pixels"]
    assert np.allclose(np.load(folder / "gradcam_rescaled.npy"), to_input_size(torch.as_tensor(gradcam), (8, 8), sigma).numpy())
    for method in ("saliency", "smoothgrad", "occlusion", "lime"):
        assert np.load(folder / f"{method}_rescaled.npy").shape == (8, 8)
    assert np.array_equal(np.load(folder / "filters.npy"), trained.model.features[0].weight.detach().numpy())
    assert np.load(folder / "classviz.npy").shape == (1, 8, 8)
    for name in report["methods"]["lime"]["arrays"]:
        assert (folder / name).is_file()


def test_lime_ranks_superpixels_by_weight_with_their_sign(explained):
    folder, report = explained
    weights = np.load(folder / "lime_weights.npy")
    segments = np.load(folder / "lime_segments.npy")
    ranking = report["methods"]["lime"]["ranking"]
    assert segments.max() + 1 == len(weights) == report["methods"]["lime"]["params"]["superpixels"]
    assert [r["weight"] for r in ranking] == pytest.approx([float(weights[r["superpixel"]]) for r in ranking])
    assert [abs(r["weight"]) for r in ranking] == sorted((abs(r["weight"]) for r in ranking), reverse=True)
    assert all(r["pixels"] == int((segments == r["superpixel"]).sum()) for r in ranking)
    assert np.allclose(np.load(folder / "lime.npy"), weights[segments])


def test_the_same_images_go_to_tensorboard(runs, explained):
    folder, _ = explained
    events = EventAccumulator(str(runs["cnn"]), size_guidance={IMAGES: 0})
    events.Reload()
    tags = set(events.Tags()[IMAGES])
    for name in (*METHODS, "comparison"):
        assert f"explain/test-0/{name}" in tags
        logged = events.Images(f"explain/test-0/{name}")[-1].encoded_image_string
        with Image.open(io.BytesIO(logged)) as image, Image.open(folder / f"{name}.png") as saved:
            assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(saved.convert("RGB")))


def test_an_image_file_is_prepared_exactly_like_the_dataset(runs, tmp_path):
    trained = open_trained(runs["cnn"])
    x = trained.data["test"][0][:1]
    std, mean = trained.data.standardizer.std, trained.data.standardizer.mean
    pixels = ((x * std + mean)[0, 0].numpy() * 255).round().astype(np.uint8)  # the digit as an 8-bit grey image
    Image.fromarray(pixels, mode="L").save(tmp_path / "digit.png")
    loaded = read_image(tmp_path / "digit.png", trained.data.spec, trained.data.standardizer, torch.device("cpu"))
    assert torch.allclose(loaded, x, atol=0.5 / 255 / float(std.min()) + 1e-6)
    result = dlx("explain", runs["cnn"], "--input", tmp_path / "digit.png", "-m", "saliency", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "digit" / "explanation.json").read_text())
    with torch.no_grad():
        assert report["predicted"]["index"] == int(trained.model(x).argmax())
    assert report["input"] == str(tmp_path / "digit.png")


def test_a_table_model_gets_per_feature_bar_charts(runs):
    result = dlx("explain", runs["iris"], "--index", "3", "--split", "val", "--target", "1")
    assert result.exit_code == 0, result.output
    folder = runs["iris"] / "explanations" / "val-3"
    report = json.loads((folder / "explanation.json").read_text())
    assert list(report["methods"]) == ["saliency", "occlusion", "lime"]
    assert report["target"]["index"] == 1
    for method, entry in report["methods"].items():
        assert len(entry["attributions"]) == 4 and (folder / f"{method}.png").stat().st_size > 2000
        assert np.allclose(np.load(folder / f"{method}.npy"), list(entry["attributions"].values()))
    assert {r["feature"] for r in report["methods"]["lime"]["ranking"]} <= {0, 1, 2, 3}


def test_list_layers_shows_shapes_and_the_default(runs):
    result = dlx("explain", runs["cnn"], "--list-layers")
    assert result.exit_code == 0
    line = next(line for line in result.stdout.splitlines() if "features.4" in line)
    assert "Conv2d" in line and "(1, 16, 4, 4)" in line and "default" in line


def rank_agreement(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Mean Spearman correlation of paired maps; a constant map has no ranking and counts as 0."""
    values = [spearmanr(p, q).statistic if p.std() > 0 and q.std() > 0 else 0.0 for p, q in zip(a, b)]
    return float(np.mean(values))


def test_sanity_maps_change_when_the_weights_are_randomised(runs):
    """Adebayo et al.'s check: a map that survives randomising the model cannot be explaining what it learned."""
    trained = open_trained(runs["cnn"])
    x, y = trained.data["test"]

    def maps(method: str) -> list[np.ndarray]:
        entry = explainers.get(method)
        return [to_input_size(entry.build(trained.model, x[i : i + 1], int(y[i]), **entry.defaults()).raw, (8, 8), 0.5)
                .flatten().numpy() for i in range(8)]

    learned = {m: maps(m) for m in ("gradcam", "occlusion")}
    with torch.no_grad():  # the control: a tiny change of the weights keeps the maps
        for p in trained.model.parameters():
            p.mul_(1.001)
    for method, reference in learned.items():
        assert rank_agreement(reference, maps(method)) > 0.95
    torch.manual_seed(123)
    for module in trained.model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    for method, reference in learned.items():
        assert rank_agreement(reference, maps(method)) < 0.4, method


def colour_png(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(path)
    return path


def text_file(path: Path) -> Path:
    path.write_text("not an image\n")
    return path


@pytest.mark.parametrize("run, args, message", [
    ("iris", ["-m", "gradcam", "--index", "0"], "needs image inputs"),
    ("mlp", ["-m", "gradcam", "--index", "0"], "has none"),
    ("cnn", ["-m", "gradcam", "--layer", "features.9", "--index", "0"], "candidates: features.0"),
    ("cnn", ["-m", "gradcam", "--layer", "head.1", "--index", "0"], "not a feature map"),
    ("cnn", ["-m", "saliency", "--target", "10", "--index", "0"], "out of range"),
    ("cnn", ["-m", "saliency", "--target", "ten", "--index", "0"], "not a class"),
    ("cnn", ["-m", "saliency", "--input", text_file], "cannot read it as an image"),
    ("cnn", ["-m", "saliency", "--input", colour_png], "a colour image"),
    ("cnn", ["-m", "saliency", "--input", "missing.png"], "cannot read it as an image"),
    ("iris", ["-m", "saliency", "--input", colour_png], "not images"),
    ("cnn", ["-m", "saliency"], "--input, or rows of a split with --index"),
    ("cnn", ["-m", "saliencey", "--index", "0"], "did you mean 'saliency'"),
    ("cnn", ["-m", "lime", "--set", "lime.samples=-5", "--index", "0"], "lime.samples"),
    ("cnn", ["-m", "lime", "--set", "lime.sample=5", "--index", "0"], "did you mean 'samples'"),
    ("cnn", ["-m", "saliency", "--set", "lime.samples=5", "--index", "0"], "not among the methods run"),
    ("cnn", ["-m", "saliency", "--index", "9999"], "split has"),
    ("cnn", ["-m", "saliency", "--index", "-1"], "split has"),
    ("cnn", ["-m", "saliency", "--index", "0", "--index", "-360"], "split has"),
    ("cnn", ["-m", "saliency", "--index", "0", "--split", "tset"], "--split 'tset'"),
])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, run, args, message):
    args = [a(tmp_path / "input.png") if callable(a) else a for a in args]
    result = dlx("explain", runs[run], *args, "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_list_explainers_shows_every_method_with_its_description():
    result = dlx("list", "explainers")
    assert result.exit_code == 0, result.output
    for method in METHODS:
        assert method in result.stdout and explainers.get(method).description
    assert "attention" in result.stdout and len(explainers.names()) == len(METHODS) + 1


def test_a_blank_gradcam_map_is_explained_in_the_json_and_the_panel(runs, tmp_path, monkeypatch):
    """A map that is zero because the weighted sum is negative everywhere carries a note, never a silent black panel."""
    from dlx.explain import render

    class Negative:  # captum's LayerGradCam, answering a weighted sum below zero at every position
        def __init__(self, model, layer):
            pass

        def attribute(self, x, target, relu_attributions):
            return -torch.rand(1, 1, 4, 4) - 0.1

    captions: list[str] = []
    draw = render.panel
    import captum.attr  # dlx imports it where gradcam runs

    monkeypatch.setattr(captum.attr, "LayerGradCam", Negative)
    monkeypatch.setattr(render, "panel", lambda *args: captions.append(args[3]) or draw(*args))
    result = dlx("explain", runs["cnn"], "-m", "gradcam", "--index", "0", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "test-0" / "explanation.json").read_text())["methods"]["gradcam"]
    assert "negative everywhere" in report["note"] and not np.load(tmp_path / "test-0" / "gradcam.npy").any()
    assert len(captions) == 1 and report["note"] in captions[0]


def test_all_skips_each_method_that_cannot_explain_the_model_with_a_line(runs, tmp_path):
    result = dlx("explain", runs["mlp"], "--index", "0", "--out", tmp_path, "--set", "lime.samples=100",
                 "--set", "smoothgrad.samples=4", "--set", "classviz.steps=5")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "test-0" / "explanation.json").read_text())
    assert list(report["methods"]) == ["saliency", "smoothgrad", "occlusion", "lime", "classviz"]
    assert result.stderr.splitlines() == [
        "note: skipped gradcam: it needs a model with a 2-d conv layer, and this one has none",
        "note: skipped filters: it needs a model with a 2-d conv layer, and this one has none",
        "note: skipped attention: it needs a model with attention, and this one has none"]
