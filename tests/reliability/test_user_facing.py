"""What the user sees (issue #19): one decision threshold for the whole evaluation report, the error rate beside the
accuracy, no top-5 where it means nothing, a progress display readable at 80-120 columns and plain progress at
least every 30 seconds, the fold being trained, rounded sweep lines, and the figures every run gets."""
from __future__ import annotations

import io
import json
import re
import time

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from dlx.analysis import binary_decision, decide
from dlx.cli import app
from dlx.sweep import space
from dlx.train import progress
from tests.conftest import EXPERIMENTS, TINY_MLP
from tests.trained_runs import committee, moons  # noqa: F401  (fixtures)

runner = CliRunner()
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def report(*args) -> dict:
    result = runner.invoke(app, ["evaluate", *map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_class_one_from_the_threshold_itself_as_the_readme_says():
    probs = torch.tensor([[0.7, 0.3], [0.5, 0.5], [0.2, 0.8]])
    assert decide(probs, 0.3).tolist() == [1, 1, 1] and decide(probs, 0.5).tolist() == [0, 1, 1]
    assert binary_decision(probs, torch.tensor([0, 0, 1]), 0.5)["confusion_matrix"] == [[1, 1], [0, 1]]


@pytest.mark.parametrize("threshold", [None, 0.0, 0.3, 1.0])
def test_the_threshold_decides_every_number_of_the_report(moons, threshold):
    got = report(moons, *(["--threshold", threshold] if threshold is not None else []))
    at = 0.5 if threshold is None else threshold
    assert got["threshold"] == at and got["binary"]["threshold"] == at
    (tn, fp), (fn, tp) = got["binary"]["confusion_matrix"]
    assert got["confusion_matrix"] == got["binary"]["confusion_matrix"]  # the table's matrix is the threshold's
    assert got["metrics"]["accuracy"] == pytest.approx((tn + tp) / got["examples"])
    assert got["metrics"]["error_rate"] == pytest.approx((fn + fp) / got["examples"])
    assert got["per_class"][list(got["per_class"])[1]]["recall"] == pytest.approx(tp / max(tp + fn, 1))
    assert "top5" not in got["metrics"]  # two classes: the true one is always among the top five


def test_the_printed_report_says_its_threshold_and_error_rate(moons):
    result = runner.invoke(app, ["evaluate", str(moons), "--threshold", "0.3"])
    assert result.exit_code == 0, result.output
    assert "reaches 0.3" in result.stdout and "error_rate" in result.stdout


def test_ten_classes_keep_top5_and_get_the_error_rate(committee, tmp_path):
    got = report(committee[0])
    assert got["threshold"] is None and "top5" in got["metrics"]
    assert got["metrics"]["error_rate"] == pytest.approx(1 - got["metrics"]["accuracy"])
    members = report(*committee, "--ensemble", "vote", "--out", tmp_path)["members"]
    assert all(m["metrics"]["error_rate"] == pytest.approx(1 - m["metrics"]["accuracy"]) for m in members)


@pytest.mark.parametrize("data", ["moons", "iris"])
def test_top5_asked_for_with_five_classes_or_fewer_is_one_line(data, tmp_path):
    result = runner.invoke(app, ["train", str(EXPERIMENTS / "digits_mlp.yaml"), "--runs-dir", str(tmp_path / "runs"),
                                 "--set", f"data.name={data}", "--set", "eval.metrics=[accuracy,top5]", "--quiet"])
    assert result.exit_code == 2 and "top5 needs more than 5 classes" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()


def _live_frame(width: int) -> list[str]:
    """The last frame the live display drew at this terminal width."""
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    live = progress.LiveProgress(console, 150_000, 30)
    live.step(12_345, 2, 0.123456, 0.00123)
    live.epoch(3, {"epoch": 3, "train/epoch_loss": 0.2, "val/loss": 0.234567, "val/accuracy": 0.96543, "val/f1": 0.95})
    live.close()
    lines = [line.rstrip() for line in ANSI.sub("", out.getvalue()).replace("\r", "\n").splitlines() if line.strip()]
    start = max(i for i, line in enumerate(lines) if line.startswith("epoch 3/30"))
    return lines[start:]


@pytest.mark.parametrize("width", [80, 100, 110, 120])
def test_the_live_display_is_readable_at_80_to_120_columns(width):
    frame = _live_frame(width)
    bar = frame[0]
    assert "12345/150000" in bar and "eta" in bar
    assert bar.index("12345/150000") - len("epoch 3/30 ") >= 25 and "━" in bar  # room for a bar one can read
    numbers = " ".join(frame[1:])
    for shown in ("loss 0.1235", "lr 0.00123", "val/loss 0.2346", "val/accuracy 0.9654", "val/f1 0.95"):
        assert shown in numbers
    assert all(len(line) <= width for line in frame) and "…" not in "".join(frame)


def test_plain_progress_says_where_it_is_while_an_epoch_is_long(monkeypatch):
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 0.05)
    out = io.StringIO()
    plain = progress.PlainProgress(Console(file=out, width=200), total_steps=1000, epochs=3)
    plain.step(40, 0, 0.5, 0.01)
    time.sleep(0.4)
    plain.close()
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3 and all(line.startswith("epoch 1/3  step 40/1000  loss 0.5  lr 0.01") for line in lines)
    time.sleep(0.2)
    assert out.getvalue().splitlines() == lines  # closed: silent


def test_plain_progress_is_quiet_while_lines_come_often_enough(monkeypatch):
    out = io.StringIO()
    plain = progress.PlainProgress(Console(file=out, width=200), total_steps=10, epochs=2)
    plain.epoch(1, {"epoch": 1, "val/loss": 0.25})
    plain.close()
    assert out.getvalue().splitlines()[0].startswith("epoch 1/2  val/loss 0.25  (")
    assert len(out.getvalue().splitlines()) == 1


def test_cross_validation_says_which_fold_it_trains(tmp_path):
    args = ["train", str(EXPERIMENTS / "digits_cnn.yaml"), "--folds", "2", "--runs-dir", str(tmp_path), "--quiet",
            *[a for o in (*TINY_MLP, "train.epochs=1") for a in ("--set", o)]]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert re.search(r"fold 1/2 \(.*fold-1\): training.*fold 2/2 \(.*fold-2\): training", result.output, re.S)
    (tmp_path / "digits_cnn" / "cv_summary.json").unlink()
    again = runner.invoke(app, ["train", "--resume", str(tmp_path / "digits_cnn"), "--quiet"])
    assert again.exit_code == 0 and "fold 1/2" in again.output and "already trained" in again.output


@pytest.mark.parametrize("value, shown", [(0.123456789, "0.1235"), (1.23456e-05, "1.235e-05"), (12345.678, "1.235e+04"),
                                          (64, "64"), ("relu", "relu"), (0.5, "0.5")])
def test_sweep_lines_round_floats_to_four_significant_digits(value, shown):
    assert space.short(value) == shown


@pytest.mark.parametrize("data, plane", [("moons", True), ("xor", True), ("blobs", True), ("iris", False)])
def test_every_run_gets_its_learning_curves_and_a_plane_its_decision_regions(data, plane, tmp_path):
    result = runner.invoke(app, ["train", str(EXPERIMENTS / "digits_mlp.yaml"), "--runs-dir", str(tmp_path), "--quiet",
                                 "--name", "r", *[a for o in (*TINY_MLP, "train.epochs=2", f"data.name={data}")
                                                  for a in ("--set", o)]])
    assert result.exit_code == 0, result.output
    curves = tmp_path / "r" / "learning_curves.png"
    assert curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and curves.stat().st_size > 5000
    assert (tmp_path / "r" / "decision_regions.png").is_file() == plane


def test_the_decision_regions_are_the_models_answers_over_the_plane():
    from dlx.config import load
    from dlx.train import figures, loop

    trainer = loop.Trainer(load(EXPERIMENTS / "moons_mlp.yaml", ["train.device=cpu"]))
    (x1, x2), regions = figures.decision_regions(trainer.model, trainer.data, 512)
    raw = trainer.data.standardizer.invert(trainer.data["train"][0])
    assert x1.min() < raw[:, 0].min() and x2.max() > raw[:, 1].max()  # the mesh covers every training point
    corner = torch.tensor([[float(x1[0, 0]), float(x2[0, 0])]])
    with torch.no_grad():
        assert regions[0, 0] == trainer.model(trainer.data.standardizer(corner)).argmax(1).item()


def test_the_largest_losses_show_the_answers_at_the_threshold(moons):
    rows = report(moons, "--threshold", "0", "--top-losses", "5")["top_losses"]
    assert {row["predicted"] for row in rows} == {"lower"}  # class 1 for every example at threshold 0
