"""The reject option, a two-class classifier's ROC curve and threshold, the largest losses with GradCAM, and
regression plots: hand-computed cases for the numbers, trained runs for the command."""
from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from dlx.analysis import binary_decision, parse_margins, reject_curve, top_losses
from dlx.cli import app
from tests.trained_runs import committee, diabetes, digits_cnn, moons  # noqa: F401  (fixtures)

runner = CliRunner()


def evaluate(*args: str):
    return runner.invoke(app, ["evaluate", *map(str, args)])


def report(*args: str) -> dict:
    result = evaluate(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_margins_come_one_by_one_or_as_ranges_with_the_stop_included():
    assert parse_margins(["0:0.3:0.1", "0.25", "0.1"]) == [0.0, 0.1, 0.2, 0.25, 0.3]


def test_the_reject_option_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.55, 0.45], [0.3, 0.7], [0.48, 0.52]])  # margins 0.8, 0.1, 0.4, 0.04
    y = torch.tensor([0, 1, 0, 1])  # wrong: examples 1 and 2
    rows = reject_curve(probs, y, [0.0, 0.05, 0.2, 0.5, 0.9])
    assert [r["answered"] for r in rows] == [4, 3, 2, 1, 0]
    assert [r["errors"] for r in rows] == [2, 2, 1, 0, 0]
    assert [r["rejection_rate"] for r in rows] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [r["error_rate"] for r in rows] == [0.5, 2 / 3, 0.5, 0.0, None]  # the rate can rise: rejecting a right answer


def test_a_growing_margin_on_the_digits_test_set(committee):
    rows = report(committee[0], "--reject-margin", "0:0.9:0.1")["reject"]
    assert [r["margin"] for r in rows] == pytest.approx([i / 10 for i in range(10)])
    # by construction: a larger margin answers fewer examples and so makes no more errors
    assert all(a["rejection_rate"] <= b["rejection_rate"] for a, b in zip(rows, rows[1:]))
    assert all(a["errors"] >= b["errors"] for a, b in zip(rows, rows[1:]))
    # what the reject option is for: the network's doubtful answers hold its errors, so the error rate among
    # the answered falls; it is not a theorem (see the hand-made case above), but holds on this trained run
    rates = [r["error_rate"] for r in rows if r["error_rate"] is not None]
    assert rates[0] > 0 and all(rate <= rates[0] for rate in rates) and rates[-1] < rates[0] / 2


def test_the_roc_curve_and_threshold_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.35, 0.65], [0.2, 0.8], [0.7, 0.3]])
    y = torch.tensor([0, 0, 1, 1, 1])
    # positives' scores 0.65, 0.8, 0.3 against negatives' 0.1, 0.6: 5 of the 6 pairs ranked right (not 0.3 > 0.6)
    decision = binary_decision(probs, y, 0.62)
    assert decision["auc"] == pytest.approx(5 / 6)
    assert decision["confusion_matrix"] == [[2, 0], [1, 2]]  # class 1 when p >= 0.62: 0.65 and 0.8
    assert decision["true_positive_rate"] == pytest.approx(2 / 3) and decision["false_positive_rate"] == 0.0


def test_a_two_class_run_gets_its_auc_roc_png_and_threshold(moons):
    at_half, at_zero = report(moons), report(moons, "--threshold", "0")
    assert 0.5 < at_half["metrics"]["auc"] <= 1.0 and at_half["binary"]["threshold"] == 0.5
    (tn, fp), (fn, tp) = at_zero["binary"]["confusion_matrix"]
    assert tn == fn == 0 and tp + fp == at_zero["examples"]  # every example called class 1
    assert (moons / "roc-test.png").stat().st_size > 1000
    assert "ROC AUC" in evaluate(moons, "--threshold", "0.3").stdout


def test_top_losses_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.99, 0.01]])
    y = torch.tensor([0, 0, 1, 1])  # losses -log p: 0.105, 1.609, 0.916, 4.605
    assert top_losses(probs, y, "classification", 3).tolist() == [3, 1, 2]


def test_a_gallery_of_the_worst_digits_with_gradcam(digits_cnn):
    result = report(digits_cnn, "--top-losses", "6")
    rows = result["top_losses"]
    assert len(rows) == 6 and [r["loss"] for r in rows] == sorted((r["loss"] for r in rows), reverse=True)
    for r in rows:  # the loss is -log p(true class): of the prediction when right, at least log 2 when wrong
        if r["label"] == r["predicted"]:
            assert r["loss"] == pytest.approx(-math.log(r["probability"]), rel=1e-4)
        else:
            assert r["loss"] >= math.log(2) - 1e-6
    assert str(digits_cnn / "top-losses-test.png") in result["figures"]
    from dlx import gallery
    from dlx.run.trained import open_trained

    cards = gallery.cards(rows[:2], [open_trained(digits_cnn)], "test")
    assert cards[0].image.shape == (8, 8) and cards[0].heat is not None and cards[0].heat.shape == (8, 8)


def test_a_table_run_shows_its_rows_as_text(committee):
    from dlx import gallery
    from dlx.run.trained import open_trained

    trained = open_trained(committee[0])
    trained.data.parts["test"] = (trained.data["test"][0].flatten(1), trained.data["test"][1])  # as a table
    trained.data.standardizer = None
    card = gallery.cards([{"index": 0, "label": "3", "predicted": "8", "probability": 0.6, "loss": 1.0}], [trained], "test")[0]
    assert card.image is None and card.text.startswith("x0 = ") and "true 3" in card.caption


def test_regression_runs_get_residual_and_predicted_vs_true_plots(diabetes):
    result = report(diabetes, "--top-losses", "4")
    assert {"mse", "mae", "r2"} <= set(result["metrics"])
    for kind in ("residuals", "predicted-vs-true", "top-losses"):
        assert (diabetes / f"{kind}-test.png").stat().st_size > 1000
    losses = [r["loss"] for r in result["top_losses"]]
    assert losses == sorted(losses, reverse=True)
    assert losses[0] == pytest.approx((result["top_losses"][0]["predicted"][0] - result["top_losses"][0]["label"][0]) ** 2,
                                      rel=1e-4)


@pytest.mark.parametrize("args, message", [
    (["--threshold", "0.3"], "two-class classifiers, and this run has 10 classes"),
    (["--reject-margin", "0:x"], "START:STOP:STEP"),
    (["--reject-margin", "0.5:0.1:0.1"], "START <= STOP and a positive STEP"),
    (["--reject-margin", "0:1:0"], "positive STEP"),
    (["--reject-margin", "1.5"], "between 0 and 1"),
    (["--top-losses", "-1"], "1 or more"),
    (["--split", "dev"], "choose train, val or test"),
])
def test_bad_options_exit_2_with_one_line(committee, args, message):
    result = evaluate(committee[0], *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_options_that_do_not_fit_the_task(diabetes, moons):
    for run, args, message in [(diabetes, ["--reject-margin", "0.1"], "applies to classifiers"),
                               (diabetes, ["--threshold", "0.5"], "regression data"),
                               (moons, ["--threshold", "1.5"], "between 0 and 1")]:
        result = evaluate(run, *args)
        assert result.exit_code == 2 and message in result.stderr, result.output
