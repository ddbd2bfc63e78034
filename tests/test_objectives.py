"""Training objectives: every registered objective trains through the one loop, logs what it declares, keeps an
optimizer per parameter group in its checkpoints; a GAN's groups step alternately with no gradient leaking across."""
from __future__ import annotations

import io
import json

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from dlx.cli import app
from dlx.config import load
from dlx.errors import ConfigError, DlxError
from dlx.metrics import DEFAULTS, EMBEDDING_DEFAULTS, logged_keys
from dlx.objectives.vae import elbo_terms
from dlx.registry import objectives
from dlx.run import checkpoint
from dlx.train import loop
from tests.conftest import EXPERIMENTS

pytestmark = pytest.mark.usefixtures("one_thread")

DIGITS = EXPERIMENTS / "digits_cnn.yaml"
COMMON = ["train.device=cpu", "train.epochs=3", "train.batch_size=256", "train.patience=null", "eval.metrics=null",
          "train.monitor=val/loss"]
# the settings that train each objective on digits in seconds: a new objective without a recipe fails here
RECIPES = {
    "supervised": ["model.name=mlp", "model.sizes=16"],
    "gan": ["objective.name=gan", "model.name=mlp_gan", "model.hidden=32", "optimizer.lr=0.0002",
            "optimizer.betas=[0.5, 0.999]", "schedule.name=constant"],
    "vae": ["objective.name=vae", "model.name=mlp_vae", "model.sizes=32", "model.latent=2", "schedule.name=constant",
            "objective.kl_warmup=10"],
    **{name: [f"objective.name={name}", "model.name=word2vec", "model.width=16", "data.name=python_stdlib",
              "data.max_chars=20000", "data.tokenizer=words", "data.min_count=2", "schedule.name=constant"]
       for name in ("skipgram", "cbow")},  # word vectors learned from the words of some Python code
    "seq2seq": ["objective.name=seq2seq", "model.name=seq2seq_rnn", "model.hidden=16", "model.embedding=8",
                "data.name=reverse", "data.n=512", "objective.teacher_forcing_end=0.5"],
    "triplet": ["objective.name=triplet", "model.name=mlp", "model.sizes=16", "model.embedding_head=8",
                "train.batch_size=64", "objective.per_class=8"],
    "siamese": ["objective.name=siamese", "model.name=mlp", "model.sizes=16", "model.embedding_head=8",
                "train.batch_size=64", "objective.per_class=8"],
}


def config(name: str, *more: str):
    return load(DIGITS, [*COMMON, *RECIPES[name], f"name={name}", *more])


def test_every_objective_has_a_recipe():
    assert set(objectives.names()) == set(RECIPES)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_objective_trains_logs_its_keys_and_checkpoints_every_optimizer(name, runs_dir):
    run, summary = loop.start(config(name), runs_dir, quiet=True, console=Console(file=io.StringIO()))
    entry = objectives.get(name).obj
    history = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    last = checkpoint.load(run.checkpoint("last"))
    metric_names = (EMBEDDING_DEFAULTS if entry.embeds else DEFAULTS[last.data_spec.task]) if entry.measures_metrics else []
    assert sorted(history[-1]) == sorted(["step", "epoch", *logged_keys(entry.groups, entry.terms_logged, metric_names,
                                                                        entry.terms_trained)])
    assert set(summary["metrics"]["test"]) == {*entry.terms_logged, *metric_names}
    assert sorted(last.optimizers) == sorted(last.schedules) == sorted(entry.groups)
    assert all(state["state"] for state in last.optimizers.values())  # each group's optimizer took steps


def test_the_gan_steps_the_discriminator_before_the_generator_sees_it_and_leaks_no_gradient(monkeypatch):
    trainer = loop.Trainer(config("gan"), quiet=True)
    discriminator = trainer.networks["discriminator"]
    before = [p.detach().clone() for p in discriminator.parameters()]
    seen = {}
    real_loss = trainer.objective.loss

    def recording(group, nets, x, y):
        seen[group] = [p.detach().clone() for p in discriminator.parameters()]
        seen[f"{group}_frozen"] = [p.requires_grad for p in discriminator.parameters()]
        return real_loss(group, nets, x, y)

    monkeypatch.setattr(trainer.objective, "loss", recording)
    x, y = next(iter(trainer.train_batches.epoch(trainer.data_order)))
    losses = trainer.train_batch(x, y)
    assert set(losses) == {"discriminator", "generator"}
    assert all(torch.equal(a, b) for a, b in zip(seen["discriminator"], before))
    assert not any(torch.equal(a, b) for a, b in zip(seen["generator"], before))  # the generator met the moved D
    assert not any(seen["generator_frozen"]) and all(seen["discriminator_frozen"])
    assert all(p.requires_grad for p in discriminator.parameters())  # unfrozen afterwards
    assert all(p.grad is None for p in trainer.model.parameters())  # G's loss put no gradient into D


def test_each_group_takes_its_own_optimizer_section():
    trainer = loop.Trainer(config("gan", "optimizers.generator={name: sgd, lr: 0.01}"), quiet=True)
    assert isinstance(trainer.optimizers["generator"], torch.optim.SGD)
    assert isinstance(trainer.optimizers["discriminator"], torch.optim.Adam)
    assert trainer.optimizers["discriminator"].param_groups[0]["betas"] == (0.5, 0.999)


def test_the_elbo_terms_on_a_hand_computed_case():
    x, reconstruction = torch.zeros(2, 3), torch.ones(2, 3)
    mean, logvar = torch.zeros(2, 4), torch.zeros(2, 4)
    squared, kl = elbo_terms(x, reconstruction, mean, logvar)
    assert squared.item() == 1.5 and kl.item() == 0.0  # 0.5 * 3 ones; N(0, I) is the prior itself
    _, kl = elbo_terms(x, reconstruction, torch.ones(2, 4), torch.zeros(2, 4))
    assert kl.item() == 2.0  # 0.5 * sum of mean^2 over 4 dimensions


@pytest.mark.parametrize("overrides, problem", [
    (["optimizers.genrator={name: adam}"], "optimizers.genrator: objective 'gan' has no parameter group 'genrator' (did you mean 'generator'?)"),
    (["schedules.critic={name: constant}"], "schedules.critic: objective 'gan' has no parameter group 'critic'"),
    (["optimizers.generator={name: adamm}"], "optimizers.generator.name: unknown optimizer 'adamm'"),
    (["optimizers.generator={name: adam, lr: -1}"], "optimizers.generator.lr"),
    (["objective.name=supervised"], "objective.name: model 'mlp_gan' is trained with objective 'gan'"),
    (["loss.name=mse"], "loss: objective 'gan' defines its own loss"),
    (["objective.name=gann"], "objective.name: unknown objective 'gann' (did you mean 'gan'?)"),
])
def test_objective_settings_are_checked_with_the_rest_of_the_config(overrides, problem):
    with pytest.raises(ConfigError) as e:
        config("gan", *overrides)
    assert any(problem in p for p in e.value.problems), e.value.problems


def test_metrics_that_cannot_measure_the_objective_are_refused():
    with pytest.raises(DlxError, match="eval.metrics: objective 'vae' logs its own losses"):
        loop.Trainer(config("vae", "eval.metrics=[accuracy]"), quiet=True)


def test_lr_find_says_why_it_does_not_ramp_two_optimizers():
    result = CliRunner().invoke(app, ["lr-find", str(DIGITS), *[a for o in [*COMMON, *RECIPES["gan"]]
                                                                 for a in ("--set", o)]])
    assert result.exit_code == 2 and "lr-find ramps one optimizer's rate; objective 'gan' trains 2" in result.output


def test_commands_for_supervised_runs_refuse_other_objectives_in_one_line(runs_dir):
    run, _ = loop.start(config("vae"), runs_dir, quiet=True, console=Console(file=io.StringIO()))
    result = CliRunner().invoke(app, ["explain", str(run.path), "--index", "0"])
    assert result.exit_code == 2 and "needs a run trained with objective 'supervised'" in result.output, result.output


@pytest.mark.parametrize("name", ["mlp_gan", "mlp_vae"])
def test_generative_models_decode_noise_to_data_shaped_samples(name):
    from dlx.data.base import CLASSIFICATION, DataSpec
    from dlx.registry import models
    model = models.get(name).build(DataSpec((1, 8, 8), CLASSIFICATION, num_classes=10))
    z = model.sample_noise(5, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert model.decode(z).shape == (5, 1, 8, 8)
