"""The training switches of train.*: each changes how, not what, the model learns."""
from __future__ import annotations

import pytest
import torch

from dlx.run import checkpoint
from dlx.train import loop

MLP = ["model.name=mlp", "model.sizes=32", "train.epochs=2", "schedule.name=constant", "optimizer.name=sgd",
       "optimizer.lr=0.1"]


def val_losses(run):
    return [h["val/loss"] for h in run.history()]


def test_accumulating_two_half_batches_equals_one_whole_batch(fast_config, runs_dir):
    whole, _ = loop.start(fast_config(*MLP, "train.batch_size=64", "name=whole"), runs_dir, quiet=True)
    halves, _ = loop.start(fast_config(*MLP, "train.batch_size=32", "train.accumulate=2", "name=halves"), runs_dir,
                           quiet=True)
    # the shuffled order differs with the batch size only in how it is cut, so compare the learning, not the bits
    assert val_losses(halves) == pytest.approx(val_losses(whole), rel=0.05)
    assert checkpoint.load(halves.checkpoint("last")).step == checkpoint.load(whole.checkpoint("last")).step


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_learns_like_fp32(fast_config, runs_dir, precision):
    _, full = loop.start(fast_config(*MLP, "name=fp32"), runs_dir, quiet=True)
    run, mixed = loop.start(fast_config(*MLP, f"train.precision={precision}", f"name={precision}"), runs_dir, quiet=True)
    assert mixed["metrics"]["test"]["accuracy"] == pytest.approx(full["metrics"]["test"]["accuracy"], abs=0.05)
    assert (checkpoint.load(run.checkpoint("last")).scaler is not None) == (precision == "fp16")


def test_ema_weights_are_what_is_evaluated_and_kept(fast_config, runs_dir):
    run, summary = loop.start(fast_config(*MLP, "train.ema=0.9"), runs_dir, quiet=True)
    last = checkpoint.load(run.checkpoint("last"))
    averaged = {k.removeprefix("module."): v for k, v in last.ema.items() if k.startswith("module.")}
    assert not torch.equal(averaged["net.1.weight"], last.model["net.1.weight"])
    best = checkpoint.load(run.checkpoint("best")).model
    assert torch.equal(best["net.1.weight"], averaged["net.1.weight"])  # the last epoch was the best here
    assert summary["metrics"]["test"]["accuracy"] > 0.5


def test_channels_last_gives_the_same_model(fast_config, runs_dir):
    _, plain = loop.start(fast_config("train.epochs=1", "name=plain"), runs_dir, quiet=True)
    _, nhwc = loop.start(fast_config("train.epochs=1", "train.channels_last=true", "name=nhwc"), runs_dir, quiet=True)
    # the same mathematics in another memory order: only rounding differs, then grows a little over an epoch
    assert nhwc["metrics"]["test"]["loss"] == pytest.approx(plain["metrics"]["test"]["loss"], rel=2e-2)
