"""A NaN or infinite loss: training stops naming the step and the last good checkpoint (train.on_nan: stop), or
leaves those batches out (skip); best.pt and last.pt never hold a diverged model."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from dlx.cli import app
from dlx.run import checkpoint
from dlx.train import loop
from tests.reliability.procs import COMMON, DIGITS, error_line, sets

# 5 optimizer steps an epoch
RECIPE = [*COMMON, "optimizer.name=sgd", "optimizer.momentum=0.9", "optimizer.lr=0.05", "train.epochs=6",
          "train.patience=null", "train.monitor=val/accuracy"]


class PoisonAt(nn.Module):
    """The training loss, turned into `value` on the given training calls (1-based): a diverging step, on demand."""

    def __init__(self, inner: nn.Module, calls: set[int] | range, value: float):
        super().__init__()
        self.inner, self.poisoned, self.value, self.calls = inner, calls, value, 0

    def forward(self, output, target):
        self.calls += torch.is_grad_enabled()  # evaluation runs without gradients
        loss = self.inner(output, target)
        return loss * self.value if torch.is_grad_enabled() and self.calls in self.poisoned else loss


@pytest.fixture
def poison(monkeypatch):
    real = loop.build.loss

    def install(calls, value):
        monkeypatch.setattr(loop.build, "loss", lambda *args: PoisonAt(real(*args), calls, value))

    return install


def train(tmp_path, *overrides: str):
    return CliRunner().invoke(app, ["train", DIGITS, *sets([*RECIPE, *overrides]), "--name", "r", "--runs-dir",
                                    str(tmp_path / "runs"), "--quiet"])


def finite(path) -> bool:
    return all(torch.isfinite(t).all() for t in checkpoint.load(path).model.values() if t.is_floating_point())


@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("log_every", [1, 100], ids=["seen-at-a-log-point", "seen-at-the-epoch-end"])
def test_a_diverged_loss_stops_with_the_step_and_the_last_good_checkpoint(tmp_path, poison, value, log_every):
    run = tmp_path / "runs" / "r"
    poison({18}, value)  # in epoch 4, after three epochs (15 steps) saved
    result = train(tmp_path, f"train.log_every={log_every}")
    assert result.exit_code == 2, result.output
    line = error_line(result)
    # read where the loss is read anyway (no device sync added per step): at once, or at the epoch's end, when the
    # epoch's sum holds the inf and the NaNs of the steps the inf's gradient spoiled
    seen, step = (value, 18) if log_every == 1 else (math.nan, 20)
    assert f"the training loss is {seen} at step {step}" in line
    assert f"the last good checkpoint is {run / 'checkpoints' / 'last.pt'} (step 15)" in line
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3  # nothing logged from the diverged model
    for which in ("best", "last"):
        state = checkpoint.load(run / "checkpoints" / f"{which}.pt")
        assert finite(run / "checkpoints" / f"{which}.pt") and state.epoch <= 3
    assert not (run / "summary.json").exists()


def test_a_loss_diverged_in_the_first_epoch_says_no_checkpoint_was_saved(tmp_path, poison):
    poison({2}, math.nan)
    result = train(tmp_path)
    assert result.exit_code == 2 and "at step 5; no checkpoint was saved yet" in error_line(result)
    assert not list((tmp_path / "runs" / "r" / "checkpoints").iterdir())


def test_on_nan_skip_leaves_those_batches_out_and_finishes(tmp_path, poison):
    poison({3, 11, 12}, math.nan)
    result = train(tmp_path, "train.on_nan=skip")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "r"
    assert loop.Run.open(run).read_json("summary.json")["skipped_batches"] == 3
    assert finite(run / "checkpoints" / "best.pt") and finite(run / "checkpoints" / "last.pt")
    assert all(math.isfinite(h["train/epoch_loss"]) for h in loop.Run.open(run).history())


def test_on_nan_skip_still_stops_when_no_batch_is_left(tmp_path, poison):
    poison(range(14, 10_000), math.inf)  # from the middle of epoch 3 on, every batch: epoch 4 has none left
    result = train(tmp_path, "train.on_nan=skip")
    assert result.exit_code == 2 and "the training loss is nan at step 20" in error_line(result), result.output
    assert checkpoint.load(tmp_path / "runs" / "r" / "checkpoints" / "last.pt").epoch == 3
