"""Committees: the vote and the mean on hand-made outputs, a trained committee against its members, and the
refusal of runs that were not trained on the same data and split."""
from __future__ import annotations

import json
import shutil
import statistics

import pytest
import torch
from typer.testing import CliRunner

from dlx.cli import app
from dlx.committee import combine
from tests.trained_runs import committee, digits_cnn, moons  # noqa: F401  (fixtures)

runner = CliRunner()


def test_vote_is_the_majority_and_a_tie_goes_to_the_larger_mean_probability():
    members = [torch.tensor([[0.5, 0.45, 0.05], [0.5, 0.1, 0.4]]),
               torch.tensor([[0.5, 0.45, 0.05], [0.0, 0.9, 0.1]]),
               torch.tensor([[0.0, 1.0, 0.0], [0.3, 0.0, 0.7]])]
    votes = combine(members, "vote", "classification")
    # example 0: two votes for class 0 beat one confident vote for class 1;
    # example 1: one vote each, and class 2 has the largest mean probability (1.2/3 against 0.8/3 and 1.0/3)
    assert votes.argmax(dim=1).tolist() == [0, 2]
    assert torch.allclose(votes.sum(dim=1), torch.ones(2))
    mean = combine(members, "mean", "classification")
    assert mean.argmax(dim=1).tolist() == [1, 2]  # example 0: class 1's mean 1.9/3 beats class 0's 1.0/3
    assert torch.allclose(mean, torch.stack(members).mean(dim=0))


def test_a_regression_committee_averages_whatever_the_mode():
    members = [torch.tensor([[1.0], [3.0]]), torch.tensor([[2.0], [5.0]])]
    assert combine(members, "vote", "regression").flatten().tolist() == [1.5, 4.0]


@pytest.mark.parametrize("mode", ["vote", "mean"])
def test_a_committee_of_three_scores_at_least_its_median_member(committee, tmp_path, mode):
    result = runner.invoke(app, ["evaluate", *map(str, committee), "--ensemble", mode, "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    members = [m["metrics"]["accuracy"] for m in report["members"]]
    assert len(members) == 3 and report["examples"] == 359
    assert report["metrics"]["accuracy"] >= statistics.median(members)
    assert (tmp_path / "confusion_matrix-test.png").is_file()
    assert set(json.loads((tmp_path / "evaluation.json").read_text())) == {"test/best"}


def test_the_committee_table_shows_every_member_and_the_committee(committee, tmp_path):
    result = runner.invoke(app, ["evaluate", *map(str, committee), "--ensemble", "vote", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for path in committee:
        assert path.name in result.stdout
    assert "committee (vote)" in result.stdout


def test_members_of_another_split_are_refused(committee, tmp_path):
    other = tmp_path / "other"  # the second member as if trained with another split seed
    shutil.copytree(committee[1], other)
    config = (other / "config.yaml").read_text()
    (other / "config.yaml").write_text(config.replace("split_seed: 0", "split_seed: 7"))
    result = runner.invoke(app, ["evaluate", str(committee[0]), str(other), "--ensemble", "mean"])
    assert result.exit_code == 2
    assert "differ in their split seed (0 vs 7)" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_members_of_another_dataset_are_refused(committee, moons):
    result = runner.invoke(app, ["evaluate", str(committee[0]), str(moons), "--ensemble", "vote"])
    assert result.exit_code == 2
    assert "data.name: digits vs moons" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_different_networks_on_the_same_split_make_a_committee(committee, digits_cnn, tmp_path):
    # the CNN was split with its seed 0, the MLPs with data.split_seed 0: the same examples in every split
    result = runner.invoke(app, ["evaluate", str(committee[0]), str(digits_cnn), "--ensemble", "mean", "--json",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["members"]) == 2


@pytest.mark.parametrize("args, message", [
    (["--ensemble", "vote"], "two or more runs"),
    (["--ensemble", "median", "X"], "choose vote or mean"),
    (["X"], "--ensemble vote or --ensemble mean"),
    (["X", "--ensemble", "mean"], "listed twice"),
    (["missing-run", "--ensemble", "mean"], "not a dlx run folder"),
])
def test_bad_committees_exit_2_with_one_line(committee, args, message):
    args = [str(committee[0]) if a == "X" else a for a in args]
    result = runner.invoke(app, ["evaluate", str(committee[0]), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
