"""Metric learning: mining on hand-made batches, the class-balanced sampler, retrieval metrics against hand-computed
values, the contrastive loss, config checks, and dlx evaluate on an embedding run."""
from __future__ import annotations

import io
import json

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from dlx import retrieval
from dlx.cli import app
from dlx.data.sampler import ClassBalancedBatches
from dlx.errors import ConfigError, DlxError
from dlx.mining import batch_hard, semi_hard, squared_distances
from dlx.objectives.metric import ContrastiveLoss, TripletLoss
from dlx.train import loop
from tests.test_objectives import config

pytestmark = pytest.mark.usefixtures("one_thread")

# points on a line: class 0 at 0 and 1, class 1 at 1.5 and 4; squared distances are easy to read off
LINE = torch.tensor([[0.0], [1.0], [1.5], [4.0]])
LABELS = torch.tensor([0, 0, 1, 1])


def test_batch_hard_takes_each_anchors_farthest_positive_and_nearest_negative():
    anchor, positive, negative, valid = batch_hard(squared_distances(LINE), LABELS)
    assert anchor.tolist() == [0, 1, 2, 3] and positive.tolist() == [1, 0, 3, 2]
    assert negative.tolist() == [2, 2, 1, 1] and valid.all()


def test_semi_hard_takes_the_nearest_negative_beyond_the_positive_else_the_farthest():
    anchor, positive, negative, valid = semi_hard(squared_distances(LINE), LABELS)
    chosen = {(a, p): n for a, p, n in zip(anchor.tolist(), positive.tolist(), negative.tolist())}
    # anchor 0: d(0,1) = 1; negatives at d 2.25 (index 2) and 16 (index 3): the nearest beyond 1 is index 2
    # anchor 1: d(1,0) = 1; negatives at 0.25 and 9: index 3 (0.25 is hard, closer than the positive)
    # anchor 2: d(2,3) = 6.25; negatives at 2.25 and 0.25, both closer: the farthest, index 0
    # anchor 3: d(3,2) = 6.25; negatives at 16 and 9: the nearest beyond 6.25 is index 1
    assert chosen == {(0, 1): 2, (1, 0): 3, (2, 3): 0, (3, 2): 1} and valid.all()


def test_mining_marks_anchors_without_a_positive_or_a_negative():
    for mine in (batch_hard, semi_hard):
        labels = torch.tensor([0, 0, 1])  # example 2 has no positive
        anchor, _, _, valid = mine(squared_distances(LINE[:3]), labels)
        assert 2 not in anchor[valid].tolist()
        _, _, _, valid = mine(squared_distances(LINE[:2]), torch.tensor([0, 0]))  # no negative at all
        assert not valid.any()


@pytest.mark.parametrize("mining, expected", [
    # batch_hard, anchors 0..3: max(1 - 2.25 + 1, 0), max(1 - 0.25 + 1, 0), max(6.25 - 0.25 + 1, 0), max(6.25 - 9 + 1, 0)
    ("batch_hard", (0.0 + 1.75 + 7.0 + 0.0) / 4),
    # semi_hard: (0,1,2) max(1 - 2.25 + 1, 0), (1,0,3) max(1 - 9 + 1, 0), (2,3,0) 6.25 - 2.25 + 1, (3,2,1) 0
    ("semi_hard", (0.0 + 0.0 + 5.0 + 0.0) / 4),
])
def test_the_triplet_loss_on_mined_triplets(mining, expected):
    assert TripletLoss(1.0, mining)(LINE, LABELS).item() == pytest.approx(expected)


def test_the_contrastive_loss_averages_pairs_of_one_class_and_of_two_classes_apart():
    # one-class pairs: (0,1) d 1, (2,3) d 6.25; two-class pairs d 2.25, 16, 0.25, 9 with tau 4: 1.75, 0, 3.75, 0
    assert ContrastiveLoss(4.0)(LINE, LABELS).item() == pytest.approx((1 + 6.25) / 2 + (1.75 + 3.75) / 4)


def test_the_sampler_draws_p_classes_of_k_examples_from_the_generator_alone():
    y = torch.arange(60) % 6  # 6 classes of 10
    x = torch.arange(60).float()[:, None]
    batches = ClassBalancedBatches(x, y, batch_size=12, per_class=4)
    assert len(batches) == 5
    epoch = list(batches.epoch(torch.Generator().manual_seed(3)))
    for xb, yb in epoch:
        groups = yb.view(3, 4)  # P = 3 classes, K = 4 examples, class after class
        assert (groups == groups[:, :1]).all() and len(set(groups[:, 0].tolist())) == 3
        assert len(set(xb.flatten().tolist())) == 12  # no example twice in a batch
        assert torch.equal(y[xb.flatten().long()], yb)
    again = list(batches.epoch(torch.Generator().manual_seed(3), start=2))  # a resumed epoch skips what was taken
    assert all(torch.equal(a[0], b[0]) for a, b in zip(epoch[2:], again)) and len(again) == 3
    other = list(batches.epoch(torch.Generator().manual_seed(4)))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(epoch, other))


@pytest.mark.parametrize("batch_size, per_class, problem", [
    (10, 4, "no multiple of objective.per_class 4"),
    (28, 4, "7 classes per batch, and the train split has 6"),
    (24, 12, "class 0 has 10 examples"),
])
def test_the_sampler_refuses_batches_it_cannot_fill(batch_size, per_class, problem):
    y = torch.arange(60) % 6
    with pytest.raises(DlxError, match=problem):
        ClassBalancedBatches(torch.zeros(60, 1), y, batch_size, per_class)


def test_retrieval_metrics_against_hand_computed_values():
    # on a line: 0 (a), 1 (a), 2 (b), 10 (b), 11 (a)
    e, y = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0]]), torch.tensor([0, 0, 1, 1, 0])
    # nearest others: 0 -> 1 (a, hit); 1 -> 0 (hit; tie with 2 broken by index); 2 -> 1 (miss); 10 -> 11 (miss);
    # 11 -> 10 (miss)
    assert retrieval.recall_at_k(e, y, 1).item() == pytest.approx(2 / 5)
    # among the 2 nearest: 0 {1, 2} hit, 1 {0, 2} hit, 2 {1, 0} miss, 10 {11, 2} hit, 11 {10, 2} miss
    assert retrieval.recall_at_k(e, y, 2).item() == pytest.approx(3 / 5)
    # 3 nearest vote: 0 {1 a, 2 b, 10 b} b; 1 {0 a, 2 b, 10 b} b; 2 {1 a, 0 a, 10 b} a;
    # 10 {11 a, 2 b, 1 a} a; 11 {10 b, 2 b, 1 a} b: no query right
    assert retrieval.knn_accuracy(e, y, 3).item() == 0.0
    # rankings (relevant marked): 0: 1* 2 10 11*: (1 + 2/4)/2; 1: 0* 2 10 11*: (1 + 2/4)/2; 2: 1 0 10* 11: 1/3;
    # 10: 11 2* 1 0: 1/2; 11: 10 2 1* 0*: (1/3 + 2/4)/2
    expected = (0.75 + 0.75 + 1 / 3 + 0.5 + (1 / 3 + 0.5) / 2) / 5
    assert retrieval.mean_average_precision(e, y).item() == pytest.approx(expected)


def test_knn_ties_go_to_the_class_whose_votes_are_nearer():
    e, y = torch.tensor([[0.0], [1.0], [2.0], [5.0]]), torch.tensor([1, 1, 0, 0])
    # query 0's two nearest: 1 (class 1, nearer) and 2 (class 0): a tie won by class 1, the query's
    assert retrieval.knn_accuracy(e, y, 2).item() == pytest.approx(3 / 4)  # query 3: 2 (0), 1 (1): class 0, right


@pytest.mark.parametrize("name, overrides, problem", [
    ("triplet", ["model.embedding_head=null"], "model.embedding_head: objective 'triplet' trains an embedding"),
    ("supervised", ["model.embedding_head=8"], "model.embedding_head: an embedding is trained by objective triplet or siamese"),
    ("triplet", ["objective.mining=hardest"], "objective.mining"),
    ("triplet", ["objective.alpha=5"], "objective.alpha"),
    ("siamese", ["model.name=mlp_vae"], "objective.name: model 'mlp_vae' is trained with objective 'vae'"),
])
def test_metric_learning_settings_are_checked_with_the_config(name, overrides, problem):
    with pytest.raises(ConfigError) as e:
        config(name, *overrides)
    assert any(problem in p for p in e.value.problems), e.value.problems


@pytest.mark.parametrize("name, metric, problem", [
    ("triplet", "accuracy", "accuracy does not measure embeddings"),
    ("supervised", "recall_at_1", "recall_at_1 does not measure predictions"),
])
def test_metrics_of_the_other_kind_are_refused(name, metric, problem):
    with pytest.raises(DlxError, match=problem):
        loop.Trainer(config(name, f"eval.metrics=[{metric}]"), quiet=True)


def test_evaluate_on_an_embedding_run_measures_retrieval_and_draws_neighbours(runs_dir):
    run, summary = loop.start(config("triplet"), runs_dir, quiet=True, console=Console(file=io.StringIO()))
    result = CliRunner().invoke(app, ["evaluate", str(run.path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads((run.path / "evaluation.json").read_text())["test/best"]
    for name in ("recall_at_1", "recall_at_5", "knn_accuracy", "map"):
        assert report["metrics"][name] == pytest.approx(summary["metrics"]["test"][name], abs=1e-6)
    assert len(report["neighbours"]) == 10 and all(len(row["nearest"]) == 5 for row in report["neighbours"])
    assert (run.path / "neighbours-test.png").is_file() and (run.path / "projector_config.pbtxt").is_file()
    refused = CliRunner().invoke(app, ["evaluate", str(run.path), "--reject-margin", "0.1"])
    assert refused.exit_code == 2 and "trained an embedding" in refused.output


def _embeddable() -> list[str]:
    """Every supervised classifier of images, tables or sequences (torchvision's large ones aside), but the
    perceptron, whose one decision is no embedding."""
    from dlx.data.base import LANGUAGE, RECONSTRUCTION
    from dlx.registry import models

    return [e.name for e in models.list() if e.meta.get("objective", "supervised") == "supervised"
            and e.meta.get("task") not in (LANGUAGE, RECONSTRUCTION) and not e.name.startswith("tv_")
            and e.name != "perceptron"]


@pytest.mark.parametrize("name", _embeddable())
def test_every_classifier_takes_an_embedding_head_of_unit_vectors(name):
    from dlx.models.embedding import Embedder, head_spec
    from dlx.registry import models
    from tests.test_models import fitting_data, small

    spec, x, _ = fitting_data(name)
    model = Embedder(models.get(name).build(head_spec(spec, 8), **small(name))).eval()
    with torch.no_grad():
        out = model(x[:4])
    assert out.shape == (4, 8) and torch.allclose(out.norm(dim=1), torch.ones(4), atol=1e-5)
