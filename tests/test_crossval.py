"""k-fold cross-validation: the folds partition what the test split leaves, class by class; `dlx train --folds`
trains one child run per fold and summarises them; each child's config reproduces its fold."""
from __future__ import annotations

import json
import shutil

import pytest
import torch
from typer.testing import CliRunner

from dlx.cli import app
from dlx.data.base import Fold, fold_indices, split_indices
from tests.conftest import EXPERIMENTS

runner = CliRunner()


@pytest.mark.parametrize("k", [2, 5, 10])
@pytest.mark.parametrize("stratify", [True, False])
def test_the_folds_partition_the_examples_outside_the_test_split(k, stratify):
    y = torch.randint(0, 4, (503,), generator=torch.Generator().manual_seed(k))
    fractions = (0.6, 0.2, 0.2)
    test = split_indices(y, fractions, 3, stratify)[2]
    vals = []
    for index in range(1, k + 1):
        train, val, fold_test = fold_indices(y, Fold(k=k, index=index), 3, fractions, stratify)
        assert torch.equal(fold_test, test)  # the same test split for every fold and for a run without folds
        assert not set(train.tolist()) & set(val.tolist()) and not set(val.tolist()) & set(test.tolist())
        assert len(train) + len(val) + len(test) == len(y)
        vals.append(val)
    held_out = torch.cat(vals)
    assert len(set(held_out.tolist())) == len(held_out)  # every example held out once
    assert set(held_out.tolist()) == set(range(len(y))) - set(test.tolist())
    sizes = [len(v) for v in vals]
    assert max(sizes) - min(sizes) <= 1
    if stratify:  # each class spread over the folds as evenly as possible
        counts = torch.stack([torch.bincount(y[v], minlength=4) for v in vals])  # (k, classes)
        assert (counts.max(dim=0).values - counts.min(dim=0).values).max() <= 1


def test_a_fold_is_a_validated_section_of_the_data():
    from dlx.config import load

    with pytest.raises(Exception, match="fold index 3 is beyond k=2"):
        load(EXPERIMENTS / "digits_cnn.yaml", ["data.fold={k: 2, index: 3}"])
    with pytest.raises(Exception, match="data.fold.k"):
        load(EXPERIMENTS / "digits_cnn.yaml", ["data.fold={k: 1, index: 1}"])


def test_train_folds_makes_child_runs_and_a_summary(tmp_path):
    runs = tmp_path / "runs"
    args = ["train", str(EXPERIMENTS / "digits_cnn.yaml"), "--folds", "2", "--runs-dir", str(runs), "--quiet",
            *[a for o in ("model.name=mlp", "model.sizes=16", "train.epochs=1", "train.device=cpu") for a in ("--set", o)]]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    parent = runs / "digits_cnn"
    assert "2-fold cross-validation" in result.stdout and "±" in result.stdout
    summary = json.loads((parent / "cv_summary.json").read_text())
    accuracies = [json.loads((parent / f"fold-{i}" / "summary.json").read_text())["metrics"]["val"]["accuracy"] for i in (1, 2)]
    assert summary["metrics"]["val"]["accuracy"]["values"] == accuracies
    assert summary["metrics"]["val"]["accuracy"]["mean"] == pytest.approx(sum(accuracies) / 2)
    assert summary["metrics"]["val"]["accuracy"]["std"] == pytest.approx(abs(accuracies[0] - accuracies[1]) / 2 ** 0.5)

    from dlx import build
    from dlx.config import load

    # the parent's config has no fold; each child's config.yaml holds its fold and rebuilds exactly its split
    assert load(parent / "config.yaml").data.fold is None
    child = load(parent / "fold-2" / "config.yaml")
    assert child.data.fold == Fold(k=2, index=2)
    y = build.dataset(child).y
    _, val, test = fold_indices(y, child.data.fold, child.seed, child.data.split, True)
    splits = build.splits(child, torch.device("cpu"))
    assert torch.equal(splits["val"][1], y[val]) and torch.equal(splits["test"][1], y[test])

    folds = [str(parent / "fold-1"), str(parent / "fold-2")]
    on_test = runner.invoke(app, ["evaluate", *folds, "--ensemble", "mean", "--out", str(tmp_path / "cv")])
    assert on_test.exit_code == 0, on_test.output  # the folds share the test split: a committee there
    on_val = runner.invoke(app, ["evaluate", *folds, "--ensemble", "mean", "--split", "val"])
    assert on_val.exit_code == 2 and "data.fold" in on_val.stderr
    parent_alone = runner.invoke(app, ["evaluate", str(parent)])
    assert parent_alone.exit_code == 2 and "is a cross-validation" in parent_alone.stderr
    from dlx.runs_table import find

    rows = {row.name: row for row in find(runs)}
    assert rows["digits_cnn"].status == "cross-validated" and rows["digits_cnn"].detail == "2 folds" and {"digits_cnn/fold-1", "digits_cnn/fold-2"} <= set(rows)
    assert rows["digits_cnn"].best == pytest.approx(summary["metrics"]["val"]["accuracy"]["mean"])

    # as if stopped before the second fold: --resume on the parent trains what is missing and summarises again
    shutil.rmtree(parent / "fold-2")
    (parent / "cv_summary.json").unlink()
    resumed = runner.invoke(app, ["train", "--resume", str(parent), "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    again = json.loads((parent / "cv_summary.json").read_text())
    assert again["metrics"]["val"]["accuracy"]["values"] == pytest.approx(accuracies)  # a CPU run reproduces exactly


def test_bad_folds_exit_2_and_leave_nothing(tmp_path):
    runs = tmp_path / "runs"
    for extra, message in [(["--folds", "1"], "at least 2 folds"),
                           (["--folds", "2", "--set", "model.name=cnn", "--set", "data.name=iris"], "needs images")]:
        result = runner.invoke(app, ["train", str(EXPERIMENTS / "digits_cnn.yaml"), "--runs-dir", str(runs), *extra])
        assert result.exit_code == 2 and message in result.stderr, result.output
        assert not runs.exists() or not any(runs.iterdir())


def test_a_bootstrap_resample_draws_the_train_split_with_replacement():
    from dlx.data.base import Bag, bootstrap

    train = torch.arange(10_000) * 3
    first, second = (bootstrap(train, Bag(k=2, index=i), 0) for i in (1, 2))
    assert len(first) == len(train) and set(first.tolist()) <= set(train.tolist())
    assert abs(len(set(first.tolist())) / len(train) - (1 - 1 / torch.e)) < 0.01  # about 63% distinct
    assert not torch.equal(first, second) and torch.equal(first, bootstrap(train, Bag(k=2, index=1), 0))


def test_bagging_trains_members_on_different_resamples_that_make_a_committee(tmp_path):
    runs = tmp_path / "runs"
    sets = [a for o in ("model.name=mlp", "model.sizes=16", "train.epochs=2", "train.device=cpu") for a in ("--set", o)]
    result = runner.invoke(app, ["train", str(EXPERIMENTS / "digits_mlp.yaml"), "--bagging", "3", "--runs-dir",
                                 str(runs), "--quiet", *sets])
    assert result.exit_code == 0, result.output
    parent = runs / "digits_mlp"
    assert "bagging: 3 members" in result.stdout
    summary = json.loads((parent / "bagging_summary.json").read_text())
    assert summary["bags"] == 3 and len(summary["metrics"]["test"]["accuracy"]["values"]) == 3
    from dlx import build
    from dlx.config import load

    parts = [build.splits(load(parent / f"bag-{i}" / "config.yaml"), torch.device("cpu")) for i in (1, 2, 3)]
    assert not torch.equal(parts[0]["train"][1], parts[1]["train"][1])  # each member its own resample
    # val and test hold the same examples (each member standardises with its own resample's statistics)
    raw = [{s: p.standardizer.invert(p[s][0]) for s in ("val", "test")} for p in parts]
    assert all(torch.allclose(raw[0][s], r[s], atol=1e-5) for r in raw for s in ("val", "test"))
    committee = runner.invoke(app, ["evaluate", *(str(parent / f"bag-{i}") for i in (1, 2, 3)), "--ensemble", "vote",
                                    "--json", "--out", str(tmp_path / "committee")])
    assert committee.exit_code == 0, committee.output
    report = json.loads(committee.stdout)
    assert len(report["members"]) == 3 and 0.2 < report["metrics"]["accuracy"] <= 1.0  # above chance (0.1)
    refused = runner.invoke(app, ["evaluate", str(parent)])
    assert refused.exit_code == 2 and "is a bagging committee" in refused.output
    from dlx.runs_table import find

    row = next(r for r in find(runs) if r.name == "digits_mlp")
    assert (row.status, row.detail) == ("bagged", "3 bags")
    both = runner.invoke(app, ["train", str(EXPERIMENTS / "digits_mlp.yaml"), "--bagging", "2", "--folds", "2"])
    assert both.exit_code == 2 and "give one of them" in both.output
