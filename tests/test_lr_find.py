"""dlx lr-find: the exponential ramp really drives every param group, stops when the loss diverges, and
suggests a finite rate inside the ramp; bad input is one line and exit code 2."""
from __future__ import annotations

import math
import re

import pytest
import torch
from typer.testing import CliRunner

from dlx import lr_find
from dlx.cli import app
from dlx.train.loop import Trainer
from tests.conftest import EXPERIMENTS, FAST

EXPERIMENT = str(EXPERIMENTS / "digits_cnn.yaml")
# one thread: on a shared, busy CPU two threads wait on each other and make these tiny models 10x slower
ONE_THREAD = "train.threads=1"
MODELS = {"digits_mlp": ["model.name=mlp", ONE_THREAD], "digits_cnn": [ONE_THREAD]}


class Recording(Trainer):
    """The run's objects, recording every param group's lr at each optimizer step."""

    made: list[Recording] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen: list[list[float]] = []
        step = self.optimizers["model"].step

        def recording_step(*a, **k):
            self.seen.append([group["lr"] for group in self.optimizers["model"].param_groups])
            return step(*a, **k)

        self.optimizers["model"].step = recording_step
        self.augmented = 0
        if self.augment is not None:
            augment = self.augment

            def counting_augment(*a):
                self.augmented += 1
                return augment(*a)

            self.augment = counting_augment
        Recording.made.append(self)


@pytest.fixture
def recording(monkeypatch):
    Recording.made = []
    monkeypatch.setattr(lr_find, "Trainer", Recording)
    return Recording.made


@pytest.mark.parametrize("name", MODELS)
def test_the_ramp_is_exponential_and_drives_every_param_group(name, fast_config, recording, tmp_path):
    config = fast_config(*MODELS[name])
    result, png = lr_find.lr_find(config, 40, 1e-5, 10.0, tmp_path / "ramp.png")
    seen = recording[0].seen
    assert len(seen) == len(result.lrs) and all(len(set(groups)) == 1 for groups in seen)
    applied = [groups[0] for groups in seen]
    assert applied == pytest.approx(result.lrs) and applied[0] == pytest.approx(1e-5)
    ratios = [b / a for a, b in zip(applied, applied[1:])]
    assert ratios == pytest.approx([(10.0 / 1e-5) ** (1 / 39)] * len(ratios), rel=1e-9)
    assert math.isfinite(result.suggestion) and 1e-5 <= result.suggestion <= 10.0
    assert result.best == min(range(len(result.smoothed)), key=result.smoothed.__getitem__)
    assert result.suggestion == pytest.approx(max(1e-5, result.lrs[result.best] / 10))
    assert result.smoothed[result.best] < 0.8 * result.smoothed[0]  # the model learned along the way
    assert png.stat().st_size > 10_000


def test_it_stops_once_the_smoothed_loss_passes_four_times_its_minimum(fast_config, recording, tmp_path):
    result = lr_find.ramp(fast_config(*MODELS["digits_mlp"]), 60, 1e-3, 1e3)
    assert result.stopped_early and len(recording[0].seen) == len(result.lrs) < 60
    assert result.smoothed[-1] > 4 * min(result.smoothed)
    assert all(s <= 4 * min(result.smoothed[: k + 1]) for k, s in enumerate(result.smoothed[:-1]))


def test_gradient_clipping_and_augmentation_apply_as_in_training(fast_config, recording, monkeypatch):
    clipped = []
    clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda p, c: clipped.append(c) or clip(p, c))
    result = lr_find.ramp(fast_config(ONE_THREAD, "train.grad_clip=0.5", "data.augment.shift=1"), 12, 1e-4, 1e-2)
    assert clipped == [0.5] * 12 and recording[0].augmented == 12 == len(result.lrs)


def test_each_ramp_step_is_an_optimizer_step_of_train_accumulate_batches(fast_config, recording):
    # 17 batches an epoch in groups of 4, 4, 4, 4 and 1: 12 steps take 5 + 5 + 2 groups
    config = fast_config(*MODELS["digits_mlp"], "train.accumulate=4", "data.augment.shift=1")
    result = lr_find.ramp(config, 12, 1e-6, 1e-4)
    assert len(result.lrs) == len(recording[0].seen) == 12
    assert recording[0].augmented == 2 * 17 + 8


def test_a_gentle_ramp_runs_every_step(fast_config):
    result = lr_find.ramp(fast_config(*MODELS["digits_mlp"]), 20, 1e-6, 1e-4)
    assert not result.stopped_early and len(result.lrs) == 20
    assert result.lrs[-1] == pytest.approx(1e-4)


def test_the_command_writes_only_its_png_and_prints_the_suggestion(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fast = [a for o in (*FAST, ONE_THREAD) for a in ("--set", o)]
    result = CliRunner().invoke(app, ["lr-find", EXPERIMENT, *fast, "--steps", "30", "--start", "1e-4"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["digits_cnn-lr-find.png"]  # no run folder
    assert "wrote digits_cnn-lr-find.png" in result.stdout
    suggested = float(re.search(r"suggested lr: (\S+)", result.stdout).group(1))
    assert 1e-4 <= suggested <= 10


@pytest.mark.parametrize("args, message", [
    (["--start", "1", "--end", "1"], "0 < start < end"),
    (["--start", "0.1", "--end", "0.01"], "0 < start < end"),
    (["--start", "0"], "0 < start < end"),
    (["--steps", "9"], "at least 10 steps"),
    (["--out", "ramp.jpg"], ".png"),
    (["--set", "optimizer.lr=x"], "optimizer.lr"),
])
def test_bad_input_is_one_line_and_exit_code_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["lr-find", EXPERIMENT, *args])
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())
