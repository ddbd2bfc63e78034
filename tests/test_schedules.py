"""Each schedule's learning rate at chosen steps against COURSE.md's formulas; warm-up; plateau; the run's length;
`dlx schedule` draws the rates training takes."""
from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from dlx import registry
from dlx.cli import app
from dlx.errors import DlxError
from dlx.schedules import RunLength, RunSteps
from tests.conftest import EXPERIMENTS, TINY_MLP

LR = 0.1


def make(name: str, total: int = 100, per_epoch: int = 10, warmup: int = 0, optimizer: str = "sgd",
         momentum: float = 0.0, **settings):
    opt = (torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=LR, momentum=momentum) if optimizer == "sgd"
           else torch.optim.Adam(nn.Linear(1, 1).parameters(), lr=LR))
    entry = registry.schedules.get(name)
    return opt, entry.build(opt, RunSteps(total, per_epoch, warmup), **entry.resolve(settings, "schedule"))


def rates(name: str, steps: list[int], **kwargs) -> list[float]:
    """The rate the optimizer uses at each of the given steps (step t follows t scheduler steps)."""
    opt, schedule = make(name, **kwargs)
    out, t = [], 0
    for target in steps:
        while t < target:
            opt.step()
            schedule.step()
            t += 1
        out.append(opt.param_groups[0]["lr"])
    return out


def test_power_halves_after_s_steps_and_thirds_after_2s():
    assert rates("power", [0, 50, 100], s=50, total=200) == pytest.approx([LR, LR / 2, LR / 3])


def test_exponential_drops_tenfold_every_s_steps():
    assert rates("exponential", [0, 10, 20, 40], s=20) == pytest.approx([LR, LR * 0.1**0.5, LR * 0.1, LR * 0.01])


def test_one_cycle_rises_to_eps1_falls_back_then_drops():
    # 100 steps, peak at 40% : up to 10 eps0 at step 40, back to eps0 at 80, down to 1e-3 eps0 at 100
    lrs = rates("one_cycle", [0, 20, 40, 60, 80, 90, 100], peak=0.4, peak_factor=10, final_drop=1e-3)
    assert lrs == pytest.approx([LR, 5.5 * LR, 10 * LR, 5.5 * LR, LR, LR * (1 + 1e-3) / 2, LR * 1e-3])


def test_one_cycle_cycles_sgd_momentum_inversely_to_the_rate():
    opt, schedule = make("one_cycle", momentum=0.9, peak=0.4)
    seen = {}
    for t in range(101):
        seen[t] = opt.param_groups[0]["momentum"]
        opt.step()
        schedule.step()
    assert [seen[t] for t in (0, 20, 40, 60, 80, 95)] == pytest.approx([0.95, 0.90, 0.85, 0.90, 0.95, 0.95])
    adam, schedule = make("one_cycle", optimizer="adam")
    assert schedule.momentum is None and "momentum" not in adam.param_groups[0]  # only optimizers with momentum
    _, plain = make("one_cycle", momentum=0.0)
    assert plain.momentum is None  # SGD without momentum keeps none


def test_piecewise_in_epochs_and_in_steps():
    epochs = rates("piecewise", [0, 19, 20, 39, 40, 99], boundaries=[2, 4], factors=[1.0, 0.1, 0.01])  # 10 steps/epoch
    assert epochs == pytest.approx([LR, LR, LR * 0.1, LR * 0.1, LR * 0.01, LR * 0.01])
    steps = rates("piecewise", [0, 4, 5, 7], boundaries=[5, 7], factors=[1.0, 0.5, 0.2], unit="steps")
    assert steps == pytest.approx([LR, LR, LR * 0.5, LR * 0.2])
    with pytest.raises(DlxError, match="one factor more"):
        make("piecewise", boundaries=[1, 2], factors=[1.0, 0.5])
    with pytest.raises(DlxError, match="must increase"):
        make("piecewise", boundaries=[2, 1], factors=[1.0, 0.5, 0.2])


def test_cosine_from_eps0_to_the_floor():
    lrs = rates("cosine", [0, 50, 100], min_factor=0.1)
    assert lrs == pytest.approx([LR, LR * (0.1 + 0.9 * 0.5), LR * 0.1])


def test_constant_stays():
    assert rates("constant", [0, 50, 100]) == pytest.approx([LR] * 3)


def test_warmup_ramps_linearly_into_any_schedule():
    assert rates("constant", [0, 1, 3, 4, 50], warmup=4) == pytest.approx([LR / 4, LR / 2, LR, LR, LR])
    assert rates("power", [0, 1, 10], warmup=2, s=10) == pytest.approx([LR / 2, LR / (1 + 0.1), LR / 2])


def test_reduce_on_plateau_halves_after_three_epochs_without_improvement():
    opt, schedule = make("reduce_on_plateau")
    lr = lambda: opt.param_groups[0]["lr"]  # noqa: E731
    for improved in (True, False, False):
        schedule.end_epoch(improved)
    assert lr() == LR  # two bad epochs: not yet
    schedule.end_epoch(False)
    assert lr() == pytest.approx(LR / 2)  # the third: halved, from the next step on
    opt.step()
    schedule.step()
    assert lr() == pytest.approx(LR / 2)  # and it stays halved as steps go on
    for improved in (False, False, True, False, False):
        schedule.end_epoch(improved)
    assert lr() == pytest.approx(LR / 2)  # an improvement resets the count
    schedule.end_epoch(False)
    assert lr() == pytest.approx(LR / 4)


def test_plateau_state_survives_a_weights_only_checkpoint():
    opt, schedule = make("reduce_on_plateau", patience=1)
    schedule.end_epoch(False)
    buffer = io.BytesIO()
    torch.save(schedule.state_dict(), buffer)
    buffer.seek(0)
    _, fresh = make("reduce_on_plateau", patience=1)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert fresh.reduction == 0.5 and fresh.get_last_lr() == pytest.approx([LR / 2])


@pytest.mark.parametrize("name", registry.schedules.names())
def test_every_schedule_gives_positive_finite_rates_over_the_run(name):
    lrs = rates(name, list(range(0, 100, 3)))  # every step the run takes: 0 .. total - 1
    assert all(math.isfinite(r) and r > 0 for r in lrs)


def test_the_loop_halves_the_rate_on_a_plateau(runs_dir):
    from dlx.config import load
    from dlx.run import checkpoint
    from dlx.train import loop

    # min_delta so large that only the first epoch counts as an improvement
    config = load(EXPERIMENTS / "digits_cnn.yaml", [*TINY_MLP, "schedule.name=reduce_on_plateau", "schedule.patience=1",
                                                    "train.min_delta=1e9", "train.epochs=3", "optimizer.lr=0.002"])
    run, _ = loop.start(config, runs_dir, quiet=True)
    last = checkpoint.load(run.checkpoint("last"))
    assert last.optimizers["model"]["param_groups"][0]["lr"] == pytest.approx(0.002 / 4)  # epochs 2 and 3 did not improve


def test_dlx_schedule_writes_a_png_without_training(tmp_path):
    out = tmp_path / "lr.png"
    result = CliRunner().invoke(app, ["schedule", str(EXPERIMENTS / "digits_cnn.yaml"), "--set", "train.epochs=2",
                                      "--set", "schedule.warmup=5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = CliRunner().invoke(app, ["schedule", str(EXPERIMENTS / "digits_cnn.yaml"), "--set", "schedule.name=cosnie"])
    assert bad.exit_code == 2 and "cosine" in bad.output


@pytest.mark.parametrize("batches, accumulate, per_epoch, ends", [
    (17, 1, 17, list(range(1, 18))),
    (17, 4, 5, [4, 8, 12, 16, 17]),  # the epoch's last group takes the one batch left
    (16, 4, 4, [4, 8, 12, 16]),
    (3, 8, 1, [3]),  # fewer batches than a group: one step an epoch
])
def test_the_run_length_groups_each_epochs_batches_by_accumulate(batches, accumulate, per_epoch, ends):
    length = RunLength(epochs=3, batches=batches, accumulate=accumulate)
    assert (length.per_epoch, length.total) == (per_epoch, 3 * per_epoch)
    assert [b for b in range(1, batches + 1) if length.ends_step(b)] == ends


@pytest.mark.parametrize("accumulate", [1, 4])
@pytest.mark.parametrize("schedule", [["schedule.name=one_cycle", "schedule.peak=0.3"],
                                      ["schedule.name=cosine", "schedule.warmup=3"],
                                      ["schedule.name=piecewise", "schedule.boundaries=[1]", "schedule.factors=[1,0.1]"]])
def test_dlx_schedule_draws_the_rates_training_logs(schedule, accumulate, runs_dir, monkeypatch):
    from dlx.config import load
    from dlx.run.folder import Run
    from dlx.schedule_plot import schedule_rates
    from dlx.train import loop

    # 17 batches an epoch: with accumulate 4, groups of 4, 4, 4, 4 and 1
    config = load(EXPERIMENTS / "digits_cnn.yaml", [*TINY_MLP, "train.batch_size=64", "train.epochs=2",
                                                    f"train.accumulate={accumulate}", "train.log_every=1", *schedule])
    logged: dict[int, float] = {}
    scalar = Run.scalar

    def recording(run, tag, value, step):
        if tag == "train/lr":
            logged[step] = value
        return scalar(run, tag, value, step)

    monkeypatch.setattr(Run, "scalar", recording)
    loop.start(config, runs_dir, quiet=True)
    drawn = schedule_rates(config)
    assert drawn.length.total == len(logged) == 2 * math.ceil(17 / accumulate)
    # train/lr at step t is the rate after t steps: the rate the plot draws at step t
    assert drawn.lrs[1:] == [logged[t] for t in range(1, drawn.length.total)]
