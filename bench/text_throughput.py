"""Language-model training throughput: dlx against a bare hand-written loop, same GPT and text.

Both train the same gpt on the same random windows of tiny Shakespeare (or python_stdlib when the
Shakespeare file is absent) with the same optimizer and schedule, evaluate on the same validation
windows after every epoch and on train/val/test at the end; dlx also logs to TensorBoard, draws its
progress display (into a buffer), writes checkpoints, vocab.json and the summary. Runs alternate and
the medians are compared. Prints tokens/s of each and the ratio dlx / bare (target >= 0.95).

    DLX_DATA=../shared/data python bench/text_throughput.py [--repeats 3] [--steps 60] [--threads N]
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import cpu_threads
from loop_overhead import dlx_loop
from rich.console import Console

from dlx import build
from dlx.config import load
from dlx.train.loop import Trainer
from dlx.objectives.supervised import measure

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "shakespeare_char_gpt.yaml"


def bare_loop(trainer: Trainer) -> float:
    """What a careful engineer writes by hand: the same objects, none of dlx's machinery."""
    config, data = trainer.config, trainer.data
    torch.manual_seed(config.seed)
    model = build.model(config, trainer.spec).to(trainer.device)
    loss_fn, optimizer = build.loss(config, trainer.spec), build.optimizer(config, model)
    schedule = build.schedule(config, optimizer, trainer.length)
    stream, block, batch = data.streams["train"], trainer.spec.in_shape[0], config.train.batch_size
    offsets = torch.arange(block)
    generator = torch.Generator().manual_seed(config.seed)
    started = time.perf_counter()
    for _ in range(config.train.epochs):
        model.train()
        for _ in range(data.steps_per_epoch):
            index = torch.randint(len(stream) - block, (batch, 1), generator=generator) + offsets  # (B, T)
            loss = loss_fn(model(stream[index]), stream[index + 1])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.train.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
            optimizer.step()
            schedule.step()
        with torch.no_grad():
            model.eval()
            xv, yv = data["val"]
            val_loss = sum(loss_fn(model(xv[i:i + 256]), yv[i:i + 256]).item() for i in range(0, len(xv), 256))
    final = [measure(model, data.batches(split, config.train.eval_batch_size), loss_fn, trainer.metrics)
             for split in ("train", "val", "test")]
    assert val_loss == val_loss and final
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=60, help="steps per epoch (two epochs per run)")
    cpu_threads.add_option(parser)
    args = parser.parse_args()
    cpu_threads.apply(args)
    overrides = ["train.device=cpu", "train.epochs=2", "train.max_minutes=null", "samples.every=null",
                 f"data.steps_per_epoch={args.steps}"]
    if not (Path(os.environ.get("DLX_DATA", "~/.cache/dlx")).expanduser() / "tinyshakespeare" / "input.txt").is_file():
        overrides += ["data.name=python_stdlib", "data.max_chars=1200000", "data.block_size=128",
                      f"data.steps_per_epoch={args.steps}", "data.eval_windows=256"]
    config = load(EXPERIMENT, overrides)
    terminal = Console(file=io.StringIO(), force_terminal=True, width=120)  # the live display, rendered
    tokens = config.train.epochs * args.steps * config.train.batch_size * config.data.settings["block_size"]
    bare, dlx = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            bare.append(bare_loop(Trainer(config, terminal)))
            dlx.append(dlx_loop(Trainer(config, terminal), Path(tmp)))
    bare_rate, dlx_rate = tokens / statistics.median(bare), tokens / statistics.median(dlx)
    print(f"{config.data.name} gpt ({config.model.settings['layers']} layers, width {config.model.settings['width']}), "
          f"{tokens} training tokens per run, {torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"bare {bare_rate:8.0f} tokens/s  dlx {dlx_rate:8.0f} tokens/s  ratio dlx/bare {dlx_rate / bare_rate:.3f}"
          f"  (target >= 0.95)")


if __name__ == "__main__":
    main()
