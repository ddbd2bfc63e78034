"""Generative adversarial networks: DCGAN sized to the data, the judge of generated samples (confidence, coverage,
Frechet distance), image grids in TensorBoard, and one-line errors."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torch import nn
from typer.testing import CliRunner

from dlx.cli import app
from dlx.config import load
from dlx.data.base import CLASSIFICATION, DataSpec
from dlx.errors import DlxError
from dlx.judge import Judge
from dlx.metrics import higher_is_better
from dlx.registry import models
from dlx.run.trained import open_trained
from dlx.train import loop
from tests.conftest import EXPERIMENTS
from tests.trained_runs import shared, train

pytestmark = pytest.mark.usefixtures("one_thread")

DIGITS_GAN = EXPERIMENTS / "digits_gan.yaml"
SMALL_DCGAN = ["model.name=dcgan", "model.width=8", "model.noise=8", "data.standardize=false"]
QUICK = ["train.device=cpu", "train.epochs=1", "train.batch_size=256", "eval.judge=null", "train.monitor=val/loss"]


def dcgan(shape: tuple[int, ...], **settings) -> nn.Module:
    entry = models.get("dcgan")
    return entry.build(DataSpec(shape, CLASSIFICATION, num_classes=10), **entry.resolve(settings, "model"))


@pytest.mark.parametrize("shape, smallest", [((1, 8, 8), (4, 4)), ((1, 28, 28), (7, 7)), ((3, 32, 32), (4, 4)),
                                             ((3, 16, 24), (4, 6))])
def test_dcgan_is_sized_to_the_images(shape, smallest):
    model = dcgan(shape, width=8, noise=5)
    z = model.sample_noise(3, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert z.shape == (3, 5)
    samples = model.decode(z)
    assert samples.shape == (3, *shape)
    assert model.discriminator(samples).shape == (3, 1)
    projection = model.generator[1]
    assert projection.kernel_size == smallest  # the generator starts from DCGAN's small map
    convs = [m for m in model.discriminator if isinstance(m, nn.Conv2d)]
    assert all(c.stride == (2, 2) for c in convs[:-1]) and not any(isinstance(m, nn.MaxPool2d) for m in model.modules())


def test_dcgan_puts_batch_norm_where_dcgan_does_and_draws_weights_from_n_0_002():
    model = dcgan((3, 32, 32), width=32)
    assert isinstance(model.generator[-1], nn.Sigmoid)  # the output layer: no batch norm after it
    assert not isinstance(model.generator[-2], nn.BatchNorm2d)
    assert isinstance(model.discriminator[1], nn.LeakyReLU)  # the discriminator's input layer: no batch norm
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 3 + 2  # after the generator's projection and 2 upsamplings; the discriminator's 2 inner convs
    weights = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert weights.std().item() == pytest.approx(0.02, rel=0.05) and abs(weights.mean().item()) < 1e-3
    gains = torch.cat([m.weight for m in norms])
    assert gains.mean().item() == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("shape, problem", [
    ((1, 6, 6), "a 6x6 image cannot halve once"),
    ((64,), "model 'dcgan' needs images (C, H, W)"),
])
def test_dcgan_refuses_data_it_cannot_draw_in_one_line(shape, problem):
    with pytest.raises(DlxError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        dcgan(shape)


def test_a_bounded_generator_on_standardised_data_is_refused_with_the_fix():
    config = load(DIGITS_GAN, [*QUICK, *SMALL_DCGAN, "data.standardize=true"])
    with pytest.raises(DlxError, match=r"model.output: the generator draws values in \[0, 1\], but the training data "
                                       r"spans \[-.*\] \(standardised: data.standardize is true\); set "
                                       r"data.standardize=false"):
        loop.Trainer(config, quiet=True)


class Replay(nn.Module):
    """A 'generative model' that draws given images: its codes are indices, in order."""

    def __init__(self, images: torch.Tensor):
        super().__init__()
        self.images = nn.Parameter(images, requires_grad=False)

    def sample_noise(self, n: int, device: torch.device, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.arange(n, device=device) % len(self.images)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.images[z]


@pytest.fixture(scope="module")
def judge_run(tmp_path_factory) -> Path:
    """A narrow digits CNN trained long enough to be confident (0.96 test accuracy): seconds."""
    return train(shared(tmp_path_factory), "judge", "model.width=8", "model.hidden=32", "train.epochs=10",
                 "train.device=cpu")


@pytest.fixture(scope="module")
def judged(judge_run):
    """The test images of the digits classifier's own split, and that classifier as a judge of them."""
    trained = open_trained(judge_run)
    images = trained.data["test"][0]
    return images, Judge(judge_run, trained.spec, trained.standardizer, torch.device("cpu"), samples=len(images))


def test_the_judge_finds_real_images_confident_of_every_class_and_at_frechet_distance_zero(judged):
    images, judge = judged
    verdict = judge(Replay(images), lambda: images, "test")
    assert verdict["judge_coverage"] == 10 and verdict["judge_confident"] > 0.5
    assert verdict["judge_confidence"] > verdict["judge_confident"] * 0.9
    assert abs(verdict["frechet"]) < 1e-6 * judge(Replay(images + 1.0), lambda: images, "test")["frechet"]


def test_the_frechet_distance_grows_as_samples_move_away_from_the_real_ones(judged):
    images, judge = judged
    distances = [judge(Replay(images + shift), lambda: images, "test")["frechet"] for shift in (0.25, 0.5, 1.0)]
    assert 0 < distances[0] < distances[1] < distances[2]
    blurred = torch.nn.functional.avg_pool2d(images, 3, 1, 1)
    assert judge(Replay(blurred), lambda: images, "test")["frechet"] > distances[0]


def test_the_judge_sees_samples_in_its_own_scale(judged, judge_run):
    """A generative run on raw pixels and the judge on standardised ones: the samples are standardised for it."""
    images, judge = judged
    trained = open_trained(judge_run)
    raw = Judge(judge_run, trained.spec, None, torch.device("cpu"), samples=len(images))
    pixels = trained.standardizer.invert(images)
    assert raw(Replay(pixels), lambda: pixels, "test") == pytest.approx(judge(Replay(images), lambda: images, "test"), abs=1e-6)


def test_judge_metrics_know_their_direction_and_sweeps_may_optimise_them():
    from dlx.sweep.spec import logged_metrics

    assert higher_is_better("val/judge_confident") and higher_is_better("test/judge_coverage")
    assert higher_is_better("val/judge_confidence") and not higher_is_better("val/frechet")
    judged = {"val/judge_confidence", "val/judge_confident", "val/judge_coverage", "val/frechet"}
    assert judged <= set(logged_metrics(load(DIGITS_GAN)))  # digits_gan.yaml names a judge
    assert judged.isdisjoint(logged_metrics(load(DIGITS_GAN, ["eval.judge=null", "train.monitor=val/loss"])))


def test_a_gan_run_is_judged_at_every_validation_and_monitors_the_frechet_distance(judge_run, runs_dir):
    config = load(DIGITS_GAN, [*QUICK, "train.epochs=2", f"eval.judge={judge_run}",
                               "eval.judge_samples=200", "train.monitor=val/frechet"])
    trainer = loop.Trainer(config, quiet=True)
    assert trainer.mode == "min"
    run, summary = loop.start(config, runs_dir, quiet=True, console=Console(file=io.StringIO()))
    history = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    for values in (*history, *(summary["metrics"][split] for split in ("train", "val", "test"))):
        prefix = "val/" if "epoch" in values else ""
        assert 0 < values[f"{prefix}judge_confidence"] <= 1 and 0 <= values[f"{prefix}judge_confident"] <= 1
        assert values[f"{prefix}judge_coverage"] in range(11) and values[f"{prefix}frechet"] > 0
    assert summary["monitor"] == {"val/frechet": min(values["val/frechet"] for values in history)}


def test_the_tensorboard_grid_is_drawn_from_fixed_noise_every_n_steps(runs_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = load(DIGITS_GAN, [*QUICK, *SMALL_DCGAN, "train.batch_size=64", "samples.every=10", "samples.grid=9"])
    run, summary = loop.start(config, runs_dir, quiet=True, console=Console(file=io.StringIO()))
    events = EventAccumulator(str(run.path), size_guidance={"images": 0})
    events.Reload()
    grids = events.Images("samples")
    assert [grid.step for grid in grids] == list(range(10, summary["steps"] + 1, 10))
    # three rows of three 8x8 images, with make_grid's 2-pixel padding
    assert (grids[0].height, grids[0].width) == (3 * 10 + 2, 3 * 10 + 2)


def test_samples_for_a_model_without_any_are_refused_in_one_line():
    config = load(EXPERIMENTS / "digits_cnn.yaml", ["train.device=cpu", "samples.every=5"])
    with pytest.raises(DlxError, match=r"samples.every: samples come from a language model on text data or a "
                                       r"generative model \(mlp_gan, dcgan, mlp_vae\), not a model of classification"):
        loop.Trainer(config, quiet=True)


@pytest.fixture(scope="module")
def not_classifiers(tmp_path_factory, trained_runs) -> dict[str, str]:
    """Runs that cannot judge digits samples: a GAN, and a classifier of another shape (iris)."""
    runs = tmp_path_factory.mktemp("judges") / "runs"
    gan, _ = loop.start(load(DIGITS_GAN, [*QUICK, "model.hidden=8", "name=gan"]), runs, quiet=True)
    return {"gan": str(gan.path), "iris": str(trained_runs["iris_mlp"])}


@pytest.mark.parametrize("judge, experiment, problem", [
    ("runs/nowhere", "digits_gan.yaml", "eval.judge: runs/nowhere: no such run folder; train a classifier first"),
    ("gan", "digits_gan.yaml", "is not a classifier (a gan run)"),
    ("iris", "digits_gan.yaml", "was trained on samples of shape (4,), and this run's are (1, 8, 8)"),
    ("runs/nowhere", "digits_cnn.yaml", "eval.judge: a judge labels a generative model's samples"),
])
def test_a_judge_that_cannot_judge_is_one_line(judge, experiment, problem, not_classifiers, tmp_path):
    result = CliRunner().invoke(app, ["train", str(EXPERIMENTS / experiment), "--set", "train.device=cpu",
                                      "--set", f"eval.judge={not_classifiers.get(judge, judge)}",
                                      "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert result.exit_code == 2, result.output
    assert problem in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "runs").exists()  # refused before any folder is made


def test_mnist_dcgan_trains_on_tiny_files_judged_by_the_notes_small_cnn(tmp_path, runs_dir):
    from torchvision import datasets as tv

    from tests.test_datasets import write_mnist_like

    data = f"data.root={write_mnist_like(tmp_path / 'data', tv.MNIST, n_train=60, n_test=10)}"
    judge, _ = loop.start(load(EXPERIMENTS / "mnist_small_cnn.yaml", ["train.device=cpu", "train.epochs=1", data]),
                          runs_dir, quiet=True)
    config = load(EXPERIMENTS / "mnist_dcgan.yaml", ["train.device=cpu", "train.epochs=1", data, "model.width=8",
                                                     f"eval.judge={judge.path}", "eval.judge_samples=50"])
    _, summary = loop.start(config, runs_dir, quiet=True)
    assert summary["epochs"] == 1 and summary["metrics"]["test"]["frechet"] > 0


def test_dlx_evaluate_judges_a_gan_run_and_records_the_verdict(not_classifiers, judge_run):
    gan = not_classifiers["gan"]
    result = CliRunner().invoke(app, ["evaluate", gan, "--judge", str(judge_run), "--split", "val", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report["metrics"]) == {"judge_confidence", "judge_confident", "judge_coverage", "frechet"}
    assert report["examples"] == 1000 and report["judge"] == str(judge_run)
    recorded = json.loads((Path(gan) / "evaluation.json").read_text())
    assert recorded["val/best"]["metrics"] == report["metrics"]
    refused = CliRunner().invoke(app, ["evaluate", str(judge_run), "--judge", str(judge_run)])
    assert refused.exit_code == 2 and "draws no samples" in refused.output
