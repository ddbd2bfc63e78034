"""Language-model training throughput: dlx against a bare hand-written loop, same GPT and text.

Both train the same gpt on the same random windows of tiny Shakespeare (or python_stdlib when the
Shakespeare file is absent) with the same optimizer and schedule, evaluate on the same validation
windows after every epoch and on train/val/test at the end; dlx also logs to TensorBoard, draws its
progress display (into a buffer), writes checkpoints, vocab.json and the summary. Runs alternate and
the medians are compared. Prints tokens/s of each and the ratio dlx / bare (target >= 0.95).

With `--seconds S` each run trains for S seconds instead of two epochs, and tokens/s are counted from the
end of the first epoch on: the steady rate, without torch.compile's compilation and the first kernels'
set-up. The bare loop takes the run's train.precision (autocast) and train.compile as dlx does.

    DLX_DATA=../shared/data python bench/text_throughput.py [--device cpu|cuda] [--repeats 3] [--steps 60]
        [--seconds S] [--set KEY=VALUE ...] [--threads N] [--json FILE]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import cpu_threads
import overrides
import report
from loop_overhead import dlx_loop
from rich.console import Console

from dlx import build
from dlx.config import load
from dlx.train.loop import Trainer
from dlx.objectives.supervised import measure

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "shakespeare_char_gpt.yaml"


@dataclass
class Timeline:
    """One training run: its seconds, and (perf_counter time, optimizer steps) at the end of every epoch."""

    seconds: float = 0.0
    epoch_ends: list[tuple[float, int]] = field(default_factory=list)

    def steady_steps_per_second(self) -> float:
        """Steps per second from the end of the first epoch to the end of the last."""
        (t0, s0), (t1, s1) = self.epoch_ends[0], self.epoch_ends[-1]
        if s1 == s0:
            raise SystemExit("--seconds: the runs ended within their first epoch; give more seconds or fewer --steps")
        return (s1 - s0) / (t1 - t0)


def bare_loop(trainer: Trainer, seconds: float) -> Timeline:
    """What a careful engineer writes by hand: the same objects, none of dlx's machinery; stops after `seconds`
    as dlx's train.max_minutes does (after the step that passes it, then the epoch's validation)."""
    config, data = trainer.config, trainer.data
    if config.train.precision == "fp16":
        raise SystemExit("the bare loop has no gradient scaler: measure train.precision=bf16 or fp32")
    torch.manual_seed(config.seed)
    model = build.model(config, trainer.spec).to(trainer.device)
    forward = torch.compile(model) if config.train.compile else model
    autocast = (contextlib.nullcontext if config.train.precision == "fp32"
                else lambda: torch.autocast(trainer.device.type, dtype=torch.bfloat16))
    loss_fn, optimizer = build.loss(config, trainer.spec), build.optimizer(config, model)
    schedule = build.schedule(config, optimizer, trainer.length)
    stream, block, batch = data.streams["train"], trainer.spec.in_shape[0], config.train.batch_size
    offsets = torch.arange(block, device=stream.device)
    generator = torch.Generator().manual_seed(config.seed)
    timeline, step = Timeline(), 0
    started = time.perf_counter()
    deadline = started + seconds
    for _ in range(config.train.epochs):
        model.train()
        for _ in range(data.steps_per_epoch):
            index = torch.randint(len(stream) - block, (batch, 1), generator=generator).to(stream.device) + offsets
            with autocast():
                loss = loss_fn(forward(stream[index]), stream[index + 1])  # (B, T) windows and their next characters
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.train.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
            optimizer.step()
            schedule.step()
            step += 1
            if time.perf_counter() > deadline:
                break
        with torch.no_grad():
            model.eval()
            xv, yv = data["val"]
            val_loss = sum(loss_fn(model(xv[i:i + 256]), yv[i:i + 256]).item() for i in range(0, len(xv), 256))
        timeline.epoch_ends.append((time.perf_counter(), step))
        if time.perf_counter() > deadline:
            break
    final = [measure(model, data.batches(split, config.train.eval_batch_size), loss_fn, trainer.metrics)
             for split in ("train", "val", "test")]
    assert val_loss == val_loss and final
    timeline.seconds = time.perf_counter() - started
    return timeline


def dlx_timeline(config, terminal: Console, runs: Path) -> Timeline:
    timeline = Timeline()
    trainer = Trainer(config, terminal,
                      on_epoch=lambda epoch, values: timeline.epoch_ends.append((time.perf_counter(), trainer.state.step)))
    timeline.seconds = dlx_loop(trainer, runs)
    return timeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60, help="steps per epoch (two epochs per run)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="train each run this long instead of two epochs; tokens/s from the first epoch's end on")
    parser.add_argument("--device", default="cpu")
    overrides.add_option(parser)
    cpu_threads.add_option(parser)
    report.add_option(parser)
    args = parser.parse_args()
    cpu_threads.apply(args)
    length = (["train.epochs=2", "train.max_minutes=null"] if args.seconds is None
              else ["train.epochs=1000000", f"train.max_minutes={args.seconds / 60}"])
    settings = [f"train.device={args.device}", *length, "samples.every=null", f"data.steps_per_epoch={args.steps}"]
    if not (Path(os.environ.get("DLX_DATA", "~/.cache/dlx")).expanduser() / "tinyshakespeare" / "input.txt").is_file():
        settings += ["data.name=python_stdlib", "data.max_chars=1200000", "data.block_size=128",
                      f"data.steps_per_epoch={args.steps}", "data.eval_windows=256"]
    config = load(EXPERIMENT, settings + args.set)
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)  # the live display, rendered
    tokens_per_step = config.train.batch_size * config.data.settings["block_size"]
    bare, dlx = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            bare.append(bare_loop(Trainer(config, terminal), args.seconds or math.inf))
            dlx.append(dlx_timeline(config, terminal, Path(tmp)))
    if args.seconds is None:
        tokens = config.train.epochs * args.steps * tokens_per_step
        what = f"{tokens} training tokens per run"
        bare_rate, dlx_rate = (tokens / statistics.median(t.seconds for t in runs) for runs in (bare, dlx))
    else:
        what = f"{args.seconds:g} s per run, steady rate after the first epoch"
        bare_rate, dlx_rate = (tokens_per_step * statistics.median(t.steady_steps_per_second() for t in runs)
                               for runs in (bare, dlx))
    switches = f"{config.train.precision}{', compiled' if config.train.compile else ''}, {args.device}"
    print(f"{config.data.name} gpt ({config.model.settings['layers']} layers, width {config.model.settings['width']}), "
          f"{what}, {switches}, {torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"bare {bare_rate:8.0f} tokens/s  dlx {dlx_rate:8.0f} tokens/s  ratio dlx/bare {dlx_rate / bare_rate:.3f}"
          f"  (target >= 0.95)")
    report.write(args, {"data": config.data.name, "precision": config.train.precision, "compile": config.train.compile,
                        "device": args.device, "bare_tokens_per_s": bare_rate, "dlx_tokens_per_s": dlx_rate,
                        "ratio": dlx_rate / bare_rate, "seconds_per_run": args.seconds})


if __name__ == "__main__":
    main()
