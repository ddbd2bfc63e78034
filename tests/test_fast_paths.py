"""The training switches of train.*: each changes how, not what, the model learns, on every device there is."""
from __future__ import annotations

import functools

import pytest
import torch

from dlx.run import checkpoint
from dlx.train import loop

MLP = ["model.name=mlp", "model.sizes=32", "train.epochs=2", "schedule.name=constant", "optimizer.name=sgd",
       "optimizer.lr=0.1"]


def val_losses(run):
    return [h["val/loss"] for h in run.history()]


def test_accumulating_two_half_batches_equals_one_whole_batch(fast_config, runs_dir, device):
    on = f"train.device={device}"
    whole, _ = loop.start(fast_config(*MLP, on, "train.batch_size=64", "name=whole"), runs_dir, quiet=True)
    halves, _ = loop.start(fast_config(*MLP, on, "train.batch_size=32", "train.accumulate=2", "name=halves"), runs_dir,
                           quiet=True)
    # the shuffled order differs with the batch size only in how it is cut, so compare the learning, not the bits
    assert val_losses(halves) == pytest.approx(val_losses(whole), rel=0.05)
    assert checkpoint.load(halves.checkpoint("last")).step == checkpoint.load(whole.checkpoint("last")).step


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_learns_like_fp32(fast_config, runs_dir, precision, device):
    on = f"train.device={device}"
    _, full = loop.start(fast_config(*MLP, on, "name=fp32"), runs_dir, quiet=True)
    run, mixed = loop.start(fast_config(*MLP, on, f"train.precision={precision}", f"name={precision}"), runs_dir,
                            quiet=True)
    assert mixed["metrics"]["test"]["accuracy"] == pytest.approx(full["metrics"]["test"]["accuracy"], abs=0.05)
    assert (checkpoint.load(run.checkpoint("last")).scaler is not None) == (precision == "fp16")


def test_ema_weights_are_what_is_evaluated_and_kept(fast_config, runs_dir, device):
    run, summary = loop.start(fast_config(*MLP, f"train.device={device}", "train.ema=0.9"), runs_dir, quiet=True)
    last = checkpoint.load(run.checkpoint("last"))
    averaged = {k.removeprefix("module."): v for k, v in last.ema.items() if k.startswith("module.")}
    assert not torch.equal(averaged["net.1.weight"], last.model["net.1.weight"])
    best = checkpoint.load(run.checkpoint("best")).model
    assert torch.equal(best["net.1.weight"], averaged["net.1.weight"])  # the last epoch was the best here
    assert summary["metrics"]["test"]["accuracy"] > 0.5


def test_channels_last_gives_the_same_model(fast_config, runs_dir, device):
    on = f"train.device={device}"
    _, plain = loop.start(fast_config(on, "train.epochs=1", "name=plain"), runs_dir, quiet=True)
    _, nhwc = loop.start(fast_config(on, "train.epochs=1", "train.channels_last=true", "name=nhwc"), runs_dir,
                         quiet=True)
    # the same mathematics in another memory order: only rounding differs, then grows a little over an epoch
    assert nhwc["metrics"]["test"]["loss"] == pytest.approx(plain["metrics"]["test"]["loss"], rel=2e-2)


def test_a_compiled_model_learns_like_the_eager_one_and_saves_plain_keys(fast_config, runs_dir, device, monkeypatch):
    if device == "cpu":  # inductor's C++ build takes a minute on a small CPU: dynamo's graphs, run by PyTorch itself
        monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))
    on = f"train.device={device}"
    _, eager = loop.start(fast_config(*MLP, on, "name=eager"), runs_dir, quiet=True)
    run, compiled = loop.start(fast_config(*MLP, on, "train.compile=true", "name=compiled"), runs_dir, quiet=True)
    # the compiler fuses and reorders floating-point work: the same learning up to rounding
    assert compiled["metrics"]["test"]["loss"] == pytest.approx(eager["metrics"]["test"]["loss"], rel=1e-2)
    assert not any(k.startswith("_orig_mod.") for k in torch.load(run.checkpoint("last"), weights_only=True)["model"])


def test_the_data_and_its_augmentation_stay_on_the_training_device(fast_config, device):
    trainer = loop.Trainer(fast_config(f"train.device={device}", "data.augment.shift=1", "data.augment.hflip=true"),
                           quiet=True)
    x, y = next(iter(trainer.train_batches.epoch(torch.Generator().manual_seed(0))))
    augmented = trainer.augment(x, 0)
    assert {x.device.type, y.device.type, augmented.device.type} == {device}
    assert all(trainer.data[split][0].device.type == device for split in ("train", "val", "test"))
    assert not torch.equal(augmented, x) and augmented.shape == x.shape


def test_fp16_with_sgd_momentum_survives_a_skipped_first_step(fast_config, runs_dir, device):
    """The gradient scaler skips the first step (its first scale overflows); fused SGD's momentum must not then read
    buffers that step never filled (it gave NaN at step 2 to 4)."""
    _, summary = loop.start(fast_config(*MLP, "train.precision=fp16", "optimizer.name=sgd", "optimizer.momentum=0.9",
                                        "optimizer.lr=0.05", "train.epochs=2", f"train.device={device}"),
                            runs_dir, quiet=True)
    assert summary["metrics"]["test"]["accuracy"] > 0.2


def test_zero_momentum_buffers_leave_fused_sgd_bitwise_unchanged():
    from dlx.optim import sgd

    weights = [torch.nn.Linear(4, 3) for _ in range(2)]
    weights[1].load_state_dict(weights[0].state_dict())
    ours, plain = sgd(weights[0], lr=0.1, momentum=0.9), torch.optim.SGD(weights[1].parameters(), lr=0.1, momentum=0.9,
                                                                         fused=True)
    for _ in range(3):
        for net, optimizer in zip(weights, (ours, plain)):
            net(torch.ones(2, 4)).pow(2).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
    assert all(torch.equal(a, b) for a, b in zip(weights[0].parameters(), weights[1].parameters()))
