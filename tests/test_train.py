"""The training loop end to end: run folder, reproduction, interrupt and resume, TensorBoard."""
from __future__ import annotations

import json
import os
import signal

import pytest
from torch import nn

from dlx.config import load
from dlx.run.folder import Run
from dlx.run import checkpoint
from dlx.train import loop
from dlx.train.interrupts import Interrupted


def test_a_run_folder_holds_everything_and_the_model_learns(fast_config, runs_dir):
    run, summary = loop.start(fast_config(), runs_dir, quiet=True)
    assert run.path == runs_dir / "digits_cnn"
    assert {p.name for p in run.path.iterdir()} >= {"config.yaml", "checkpoints", "metrics.jsonl", "summary.json"}
    assert {p.name for p in (run.path / "checkpoints").iterdir()} == {"best.pt", "last.pt"}
    history = run.history()
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert {"train/epoch_loss", "val/loss", "val/accuracy"} <= set(history[0])
    assert summary["metrics"]["test"]["accuracy"] > 0.8  # 3 epochs of a narrow CNN, far above chance (0.1)
    assert json.loads((run.path / "summary.json").read_text()) == summary


def test_a_taken_name_gets_a_suffix_and_nothing_is_overwritten(fast_config, runs_dir):
    first, _ = loop.start(fast_config("train.epochs=1"), runs_dir, quiet=True)
    before = (first.path / "summary.json").read_bytes()
    second, _ = loop.start(fast_config("train.epochs=1"), runs_dir, quiet=True)
    assert second.path.name == "digits_cnn-2"
    assert (first.path / "summary.json").read_bytes() == before


def test_the_saved_config_reproduces_the_run_exactly(fast_config, runs_dir):
    run, summary = loop.start(fast_config(), runs_dir, quiet=True)
    again, summary2 = loop.start(load(run.config_path), runs_dir, quiet=True)
    assert again.path != run.path
    assert summary2["metrics"] == summary["metrics"]
    assert again.history() == run.history()


class InterruptAt(nn.Module):
    """A loss that sends this process SIGINT on its n-th call, as a user's Ctrl-C would."""

    def __init__(self, inner: nn.Module, n: int):
        super().__init__()
        self.inner, self.n, self.calls = inner, n, 0

    def forward(self, output, target):
        self.calls += 1
        if self.calls == self.n:
            os.kill(os.getpid(), signal.SIGINT)
        return self.inner(output, target)


@pytest.mark.parametrize("optimizer", ["optimizer.name=sgd", "optimizer.name=adam"])
def test_an_interrupted_and_resumed_run_ends_as_an_uninterrupted_one(fast_config, runs_dir, monkeypatch, optimizer,
                                                                    device):
    overrides = (optimizer, "model.dropout=0.3", "schedule.name=power", "schedule.s=20", f"train.device={device}")
    _, expected = loop.start(fast_config(*overrides, "name=straight"), runs_dir, quiet=True)

    real_loss = loop.build.loss
    monkeypatch.setattr(loop.build, "loss", lambda *args: InterruptAt(real_loss(*args), 25))
    with pytest.raises(Interrupted) as stopped:
        loop.start(fast_config(*overrides, "name=stopped"), runs_dir, quiet=True)
    assert stopped.value.exit_code == 130 and "dlx train --resume" in str(stopped.value)
    monkeypatch.setattr(loop.build, "loss", real_loss)

    run, resumed = loop.resume(runs_dir / "stopped", quiet=True)
    assert resumed["metrics"] == expected["metrics"]
    assert [h["val/loss"] for h in run.history()] == [h["val/loss"] for h in Run.open(runs_dir / "straight").history()]


def record_checkpoint_writes(monkeypatch) -> list[tuple[str, int]]:
    """(file, epoch) of every checkpoint the loop hands to the writer, in order."""
    writes, submit = [], checkpoint.CheckpointWriter.submit

    def recording(writer, path, state):
        writes.append((path.name, state.epoch))
        submit(writer, path, state)

    monkeypatch.setattr(checkpoint.CheckpointWriter, "submit", recording)
    return writes


@pytest.mark.parametrize("seconds, expected", [
    ("0", [("best.pt", 1), ("last.pt", 1), ("best.pt", 2), ("last.pt", 2), ("last.pt", 3), ("last.pt", 4)]),
    ("3600", [("best.pt", 2), ("last.pt", 4)]),  # only the last epoch; best.pt (epoch 2) just before it
], ids=["every-epoch", "paced"])
def test_last_pt_waits_checkpoint_seconds_and_best_pt_goes_just_before_it(fast_config, runs_dir, monkeypatch, seconds,
                                                                          expected):
    writes = record_checkpoint_writes(monkeypatch)
    # epochs 1 and 2 improve the monitored metric, 3 and 4 do not
    improved = iter([True, True, False, False])
    monkeypatch.setattr(loop, "improved", lambda *args: next(improved))
    run, summary = loop.start(fast_config("train.epochs=4", f"train.checkpoint_seconds={seconds}"), runs_dir,
                              quiet=True)
    assert writes == expected
    assert summary["best_epoch"] == 2
    assert checkpoint.load(run.checkpoint("best")).epoch == 2


def test_a_failing_epoch_hook_still_leaves_the_best_model_on_disk(fast_config, runs_dir, monkeypatch):
    writes = record_checkpoint_writes(monkeypatch)

    def prune(epoch, values):  # as a sweep prunes a trial
        if epoch == 2:
            raise RuntimeError("pruned")

    with pytest.raises(RuntimeError, match="pruned"):
        loop.start(fast_config("train.epochs=4", "train.checkpoint_seconds=3600"), runs_dir, quiet=True,
                   on_epoch=prune)
    assert [name for name, _ in writes] == ["best.pt"]  # no last.pt yet: the first was not due
    assert checkpoint.load(runs_dir / "digits_cnn" / "checkpoints" / "best.pt").epoch in (1, 2)


def test_resuming_a_finished_run_says_so(fast_config, runs_dir):
    run, _ = loop.start(fast_config("train.epochs=1"), runs_dir, quiet=True)
    with pytest.raises(Exception, match="has finished"):
        loop.resume(run.path, quiet=True)


def test_early_stopping_stops_after_patience_evaluations(fast_config, runs_dir):
    # min_delta so large that nothing after the first epoch counts as an improvement
    run, summary = loop.start(fast_config("train.epochs=10", "train.patience=2", "train.min_delta=100"), runs_dir,
                              quiet=True)
    assert summary["epochs"] == 3 and summary["early_stopped"] and summary["best_epoch"] == 1


def test_tensorboard_holds_scalars_hparams_images_and_graph(fast_config, runs_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, _ = loop.start(fast_config("train.log_every=5"), runs_dir, quiet=True)
    events = EventAccumulator(str(run.path), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/lr", "val/loss", "val/accuracy", "time/epoch_seconds",
            "time/samples_per_second", "hparam/test_accuracy"} <= set(tags["scalars"])
    assert len(events.Scalars("val/loss")) == 3
    assert "data/train_samples" in tags["images"]
    assert tags["graph"]
    hparams = events.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(hparams)
    assert b"optimizer.lr" in hparams["_hparams_/session_start_info"]


def test_regression_with_several_targets_logs_each_metric_as_one_number(runs_dir, monkeypatch):
    import torch

    from dlx.config import validate
    from dlx.data.base import REGRESSION, ArrayData

    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr(loop.build, "dataset", lambda config: ArrayData(x, torch.stack([x.sum(1), x[:, 0]], 1), REGRESSION))
    config = validate({"name": "two", "data": {"name": "diabetes"}, "model": {"name": "mlp", "sizes": "16"},
                       "loss": {"name": "mse"}, "train": {"epochs": 2, "device": "cpu"},
                       "eval": {"metrics": ["mse", "mae", "rmse", "r2"]}})
    _, summary = loop.start(config, runs_dir, quiet=True)
    assert summary["metrics"]["test"]["mse"] == pytest.approx(summary["metrics"]["test"]["loss"], rel=1e-5)
    assert all(isinstance(v, float) for v in summary["metrics"]["test"].values())
