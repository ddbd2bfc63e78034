"""`dlx predict` and the Python API it calls: every input kind gives what dlx evaluate gives on the same examples, the
options shape the rows, a committee combines its members, and every bad input is one line naming it, exit 2."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_iris
from typer.testing import CliRunner

import dlx
from dlx import committee
from dlx.cli import app
from dlx.evaluate import predict as evaluate_predict
from dlx.run.trained import open_trained

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


def cli(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def raw_test_split(run: Path) -> tuple[torch.Tensor, list[int]]:
    """The test split as the run's dataset holds it (before standardisation), and dlx evaluate's classes."""
    trained = open_trained(run)
    x = trained.data["test"][0]
    raw = trained.standardizer.invert(x) if trained.standardizer is not None else x
    return raw, evaluate_predict(trained, "test").argmax(1).tolist()


@pytest.fixture(scope="module")
def digit_pngs(trained_runs, tmp_path_factory) -> tuple[Path, list[int]]:
    """The digits test split as 8-bit grey PNG files, and the classes dlx evaluate gives them."""
    folder = tmp_path_factory.mktemp("pngs")
    raw, classes = raw_test_split(trained_runs["digits_cnn"])
    for i, image in enumerate(raw[:, 0]):
        Image.fromarray(np.round(image.numpy() * 255).astype(np.uint8), "L").save(folder / f"{i:04d}.png")
    return folder, classes


@pytest.fixture(scope="module")
def iris_csv(trained_runs, tmp_path_factory) -> tuple[Path, list[int]]:
    """The iris test split as a CSV with the dataset's column names and the true species, and evaluate's classes."""
    path = tmp_path_factory.mktemp("iris") / "flowers.csv"
    trained = open_trained(trained_runs["iris_mlp"])
    raw, classes = raw_test_split(trained_runs["iris_mlp"])
    species = [trained.spec.class_names[int(c)] for c in trained.data["test"][1]]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*load_iris().feature_names, "target"])
        writer.writerows([*map(repr, row.tolist()), name] for row, name in zip(raw, species))
    return path, classes


def predicted(path: Path) -> list[str]:
    with path.open() as f:
        return [row["predicted"] for row in csv.DictReader(f)]


def test_png_files_get_the_classes_dlx_evaluate_gives(trained_runs, digit_pngs, tmp_path):
    folder, classes = digit_pngs
    out = tmp_path / "p.csv"
    result = cli("predict", trained_runs["digits_cnn"], folder, "--out", out, "--batch-size", "50")
    assert result.exit_code == 0, result.output
    assert predicted(out) == [str(c) for c in classes]
    assert f"wrote {len(classes)} predictions" in result.output


def test_a_csv_of_iris_gets_the_classes_dlx_evaluate_gives_beside_its_target(trained_runs, iris_csv, tmp_path):
    path, classes = iris_csv
    result = dlx.open_run(trained_runs["iris_mlp"]).predict(path)
    names = open_trained(trained_runs["iris_mlp"]).spec.class_names
    assert [row["predicted"] for row in result.rows] == [names[c] for c in classes]
    assert [row["input"] for row in result.rows[:2]] == [f"{path}:0", f"{path}:1"]
    truth = [row["target"] for row in csv.DictReader(path.open())]
    assert [row["target"] for row in result.rows] == truth
    assert result.array.shape == (len(classes), 3) and np.allclose(result.array.sum(1), 1, atol=1e-5)


@pytest.mark.parametrize("suffix", [".npz", ".pt"])
def test_arrays_get_the_classes_dlx_evaluate_gives(trained_runs, tmp_path, suffix):
    raw, classes = raw_test_split(trained_runs["digits_mlp"])
    path = tmp_path / f"x{suffix}"
    if suffix == ".npz":
        np.savez(path, x=raw.numpy())
    else:
        torch.save({"x": raw}, path)
    rows = dlx.open_run(trained_runs["digits_mlp"]).predict(path).rows
    assert [int(r["predicted"]) for r in rows] == classes


def test_globs_files_and_folders_stream_in_order(trained_runs, digit_pngs):
    folder, classes = digit_pngs
    rows = dlx.open_run(trained_runs["digits_cnn"]).predict(
        [folder / "0003.png", str(folder / "000[0-2].png")], batch_size=2).rows
    assert [r["input"] for r in rows] == [str(folder / f"000{i}.png") for i in (3, 0, 1, 2)]
    assert [int(r["predicted"]) for r in rows] == [classes[i] for i in (3, 0, 1, 2)]


def test_top_k_and_the_reject_option(trained_runs, digit_pngs, tmp_path):
    folder, _ = digit_pngs
    out = tmp_path / "p.jsonl"
    result = cli("predict", trained_runs["digits_cnn"], folder / "0000.png", folder / "0001.png", "--top-k", "3",
                 "--out", out)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    for row in rows:
        probabilities = [p for _, p in row["top_k"]]
        assert len(row["top_k"]) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert row["top_k"][0] == [row["predicted"], row["probability"]]
    run = dlx.open_run(trained_runs["digits_cnn"])
    assert {r["predicted"] for r in run.predict(folder / "0000.png", reject_margin=1.0).rows} == {"rejected"}
    assert "rejected" not in {r["predicted"] for r in run.predict(folder / "0000.png", reject_margin=0.0).rows}


def test_a_few_inputs_make_a_table_on_the_terminal(trained_runs, iris_csv):
    result = cli("predict", trained_runs["iris_mlp"], iris_csv[0], "--top-k", "2")
    assert result.exit_code == 0, result.output
    assert "predicted" in result.output and "target" in result.output and "top k" in result.output


def test_regression_reports_values(trained_runs, tmp_path):
    path = tmp_path / "trees.csv"
    path.write_text("diameter_cm,age_years\n10,12\n50,100\n")
    rows = dlx.open_run(trained_runs["oak_regression"]).predict(path).rows
    assert [r["target"] for r in rows] == ["12", "100"]
    assert isinstance(rows[0]["value"], float) and rows[1]["value"] > rows[0]["value"]


def test_a_committee_combines_its_members(trained_runs, digit_pngs):
    folder, _ = digit_pngs
    members = [trained_runs["digits_cnn"], trained_runs["digits_mlp"]]
    images = str(folder / "00[0-1]?.png")
    alone = [dlx.open_run(m).predict(images).array for m in members]
    together = dlx.api.predict(members, images, dlx.PredictOptions(ensemble="vote"))
    expected = committee.combine([torch.from_numpy(a) for a in alone], "vote", "classification")
    assert np.allclose(together.array, expected.numpy(), atol=1e-6)


def colour_png(path: Path) -> Path:
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8), "RGB").save(path)
    return path


def written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BAD = [
    ("digits_cnn", lambda d: colour_png(d / "colour.png"), "colour.png: a colour image"),
    ("digits_cnn", lambda d: written(d / "broken.png", "not a png"), "broken.png: cannot read it as an image"),
    ("digits_cnn", lambda d: d / "missing.png", "missing.png: no such file"),
    ("iris_mlp", lambda d: written(d / "few.csv", "sepal length (cm),sepal width (cm)\n1,2\n"),
     "few.csv: no column 'petal length (cm)', 'petal width (cm)'"),
    ("oak_regression", lambda d: written(d / "extra.csv", "diameter_cm,height\n1,2\n"), "extra.csv: column 'height'"),
    ("oak_regression", lambda d: written(d / "words.csv", "diameter_cm\nthick\n"), "column 'diameter_cm': 'thick' is not a number"),
    ("oak_regression", lambda d: colour_png(d / "tree.png"), "tree.png: this run's model takes tables of 1 features"),
    ("digits_mlp", lambda d: np.savez(d / "wrong.npz", x=np.zeros((2, 5))) or d / "wrong.npz", "wrong.npz: x holds samples of shape (5,)"),
]


@pytest.mark.parametrize("run, make, message", BAD, ids=[m for _, _, m in BAD])
def test_bad_input_is_one_line_naming_it_and_exit_2(trained_runs, tmp_path, run, make, message):
    result = cli("predict", trained_runs[run], make(tmp_path))
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_skip_bad_lists_the_bad_files_and_predicts_the_rest(trained_runs, digit_pngs, tmp_path):
    folder, classes = digit_pngs
    bad = written(tmp_path / "bad.png", "not a png")
    result = cli("predict", trained_runs["digits_cnn"], folder / "0000.png", bad, folder / "0001.png", "--skip-bad")
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "bad.png" in result.output
    rows = dlx.open_run(trained_runs["digits_cnn"]).predict([folder / "0000.png", bad], skip_bad=True)
    assert [r["predicted"] for r in rows.rows] == [str(classes[0])] and rows.skipped[0][0] == str(bad)
    nothing = cli("predict", trained_runs["digits_cnn"], bad, "--skip-bad")
    assert nothing.exit_code == 2 and "none of the 1 inputs could be read" in nothing.output


@pytest.mark.parametrize("args, message", [
    (["--threshold", "0.3"], "--threshold applies to two-class classifiers"),
    (["--ensemble", "vote"], "a committee needs two or more runs"),
    (["--top-k", "0"], "--top-k 0"),
])
def test_bad_options_are_one_line(trained_runs, digit_pngs, args, message):
    result = cli("predict", trained_runs["digits_cnn"], digit_pngs[0] / "0000.png", *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_many_inputs_go_to_predictions_csv_never_over_an_existing_file(trained_runs, digit_pngs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder, classes = digit_pngs
    assert cli("predict", trained_runs["digits_cnn"], folder).exit_code == 0
    assert predicted(tmp_path / "predictions.csv") == [str(c) for c in classes]
    again = cli("predict", trained_runs["digits_cnn"], folder)
    assert again.exit_code == 2 and "predictions.csv exists already" in again.output


def test_the_api_reads_a_run(trained_runs):
    run = dlx.open_run(trained_runs["iris_mlp"])
    assert run.config["data"]["name"] == "iris"
    assert 0 <= run.metrics["test"]["accuracy"] <= 1
    assert [h["epoch"] for h in run.history][:2] == [1, 2]
    assert not run.model().training
    assert run.evaluate("val")["metrics"]["accuracy"] == pytest.approx(run.metrics["val"]["accuracy"], abs=1e-6)
    with pytest.raises(dlx.DlxError, match="not a dlx run folder"):
        dlx.open_run(trained_runs["iris_mlp"].parent / "nothing")


def test_import_dlx_and_its_command_line_load_no_torch():
    code = "import sys, dlx, dlx.cli; dlx.DlxError; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
