"""kill -9 at random moments, in the middle of checkpoint writes too: `dlx train --resume` always finds a valid
checkpoint and the resumed run ends bitwise equal to an uninterrupted one (CPU): weights, optimizer and schedule
state, early-stopping state and every logged value. Data order, augmentation and dropout are all in play."""
from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlx.cli import app
from dlx.config import load
from dlx.train import loop
from tests.reliability.procs import ADAM, DIGITS, SGD, assert_same_run, assert_valid_checkpoints, kill_after, sets, start, wait_until

RANDOM = random.Random(8)  # the moments differ from test to test, and from one CI run to the next they are the same


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, Path]:
    """Each recipe trained without interruption, in this process."""
    root = tmp_path_factory.mktemp("reference")
    return {name: loop.start(load(DIGITS, [*overrides, f"name={name}"]), root, quiet=True)[0].path
            for name, overrides in (("sgd", SGD), ("adam", ADAM))}


def resume_in_process(run: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--resume", str(run), "--quiet"])
    assert result.exit_code == 0, result.output


def test_sgd_killed_twice_at_random_moments_ends_as_the_uninterrupted_run(tmp_path, reference):
    run = tmp_path / "runs" / "killed"
    first = start(["train", DIGITS, *sets(SGD), "--name", "killed", "--runs-dir", str(run.parent), "--quiet"],
                  tmp_path / "log")
    assert kill_after(first, run, RANDOM.randint(2, 16), RANDOM.uniform(0, 0.05)) == -signal.SIGKILL
    assert_valid_checkpoints(run)
    second = start(["train", "--resume", str(run), "--quiet"], tmp_path / "log")  # killed again while resuming
    assert kill_after(second, run, RANDOM.randint(20, 32), RANDOM.uniform(0, 0.05)) == -signal.SIGKILL
    assert_valid_checkpoints(run)
    resume_in_process(run)
    assert_same_run(run, reference["sgd"])


@pytest.mark.parametrize("write", [1, RANDOM.randint(3, 10)], ids=["first-checkpoint", "a-later-checkpoint"])
def test_adam_killed_in_the_middle_of_a_checkpoint_write_ends_as_the_uninterrupted_run(tmp_path, reference, write):
    run, marker = tmp_path / "runs" / "killed", tmp_path / "stalled"
    proc = start([str(write), str(marker), "train", DIGITS, *sets(ADAM), "--name", "killed", "--runs-dir",
                  str(run.parent), "--quiet"], tmp_path / "log", wrapper=["tests.reliability.stalled_disk"])
    wait_until(marker.exists, proc)
    proc.kill()
    proc.wait(timeout=60)
    assert list((run / "checkpoints").glob(".last.pt.*.tmp")), "the kill did not land inside the write"
    assert (run / "checkpoints" / "last.pt").exists() == (write > 1)  # before the first last.pt: nothing to resume
    assert_valid_checkpoints(run)
    if write > 1:  # and once more at a random moment of the resumed run, early stopping state in the checkpoint
        again = start(["train", "--resume", str(run), "--quiet"], tmp_path / "log")
        kill_after(again, run, write + RANDOM.randint(1, 3), RANDOM.uniform(0, 0.05))
        assert_valid_checkpoints(run)
    resume_in_process(run)
    assert not list(run.glob("**/.*.tmp"))  # the cut-short write's temporary file is gone
    assert_same_run(run, reference["adam"])


# the objectives beyond supervised: a GAN's two optimizers stepped alternately, a VAE drawing noise every step (and
# warming its KL up), an encoder-decoder fed its own predictions at random steps
OBJECTIVES = {
    "gan": ["objective.name=gan", "model.name=mlp_gan", "model.hidden=16", "optimizer.betas=[0.5, 0.999]"],
    "vae": ["objective.name=vae", "model.name=mlp_vae", "model.sizes=16", "model.latent=2"],
    # the KL's weight follows the step, and the reconstruction and KL sums of a cut epoch are in the checkpoint
    "vae-conv-warmup": ["objective.name=vae", "model.name=conv_vae", "model.channels=4-8", "model.hidden=16",
                        "model.latent=2", "objective.kl_warmup_fraction=0.5", "train.log_every=3"],
    # teacher forcing decaying to 0.3: the decoder's coins are drawn every step
    "seq2seq": ["objective.name=seq2seq", "model.name=seq2seq_rnn", "model.hidden=16", "model.embedding=8",
                "model.dropout=0.1", "data.name=reverse", "data.n=1024", "objective.teacher_forcing_end=0.3"],
    # class-balanced batches drawn from the epoch's generator, semi-hard triplets mined per batch
    "triplet": ["objective.name=triplet", "model.name=mlp", "model.sizes=16", "model.embedding_head=8",
                "objective.per_class=8", "train.batch_size=64"],
    # every pair of a class-balanced batch in the contrastive loss
    "siamese": ["objective.name=siamese", "model.name=mlp", "model.sizes=16", "model.embedding_head=8",
                "objective.per_class=8", "train.batch_size=64"],
    # batch norm's running statistics, label smoothing and image grids from fixed noise in TensorBoard
    "dcgan": ["objective.name=gan", "model.name=dcgan", "model.width=4", "model.noise=8", "data.standardize=false",
              "objective.label_smoothing=0.1", "optimizer.betas=[0.5, 0.999]", "samples.every=4"],
}
OBJECTIVE_COMMON = ["train.device=cpu", "train.threads=1", "train.checkpoint_seconds=0", "train.batch_size=256",
                    "train.epochs=14", "train.patience=null", "train.monitor=val/loss", "eval.metrics=null",
                    "schedule.name=cosine", "optimizer.lr=0.001"]


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_every_objective_killed_at_a_random_moment_ends_as_the_uninterrupted_run(tmp_path, name):
    overrides = [*OBJECTIVE_COMMON, *OBJECTIVES[name]]
    reference = loop.start(load(DIGITS, [*overrides, "name=reference"]), tmp_path / "reference", quiet=True)[0].path
    run = tmp_path / "runs" / "killed"
    proc = start(["train", DIGITS, *sets(overrides), "--name", "killed", "--runs-dir", str(run.parent), "--quiet"],
                 tmp_path / "log")
    assert kill_after(proc, run, RANDOM.randint(2, 10), RANDOM.uniform(0, 0.05)) == -signal.SIGKILL
    assert_valid_checkpoints(run)
    resume_in_process(run)
    assert_same_run(run, reference)
