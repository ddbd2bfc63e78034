"""The course's sinusoidal positions against learned ones in the character GPT, at one fixed budget.

The same small GPT (the shakespeare_char_gpt recipe, narrowed to train in about a minute per run) trains for the
same number of steps on tiny Shakespeare (or python_stdlib when the Shakespeare file is absent) with learned and
with sinusoidal positions; prints each one's validation loss (nats/char) and the ratio sinusoidal / learned
(target <= 1.05). Before the token embeddings were scaled by sqrt(d_model), sinusoidal positions stalled at the
unigram loss (about 3.3 nats/char on Shakespeare). Measured on the shared 2-core machine (load average about 15),
600 steps on Shakespeare: learned 2.220, sinusoidal 2.330 nats/char, a ratio of 1.050 (with the table added to
unscaled tokens, as before: 2.833, a ratio of 1.276).

    DLX_DATA=../shared/data python bench/gpt_positions.py [--steps 600] [--threads N]
"""
from __future__ import annotations

import argparse
import io
import os
import tempfile
from pathlib import Path

from rich.console import Console

from dlx.config import load
from dlx.train import loop

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "shakespeare_char_gpt.yaml"


def corpus() -> str:
    root = Path(os.environ.get("DLX_DATA", Path.home() / ".cache" / "dlx"))
    return "tinyshakespeare" if (root / "tinyshakespeare" / "input.txt").is_file() else "python_stdlib"


def val_loss(positions: str, steps: int, threads: int, root: Path) -> float:
    overrides = [f"data.name={corpus()}", "data.block_size=64", f"data.steps_per_epoch={steps}", "data.eval_windows=128",
                 "model.width=64", "model.layers=2", "model.heads=4", f"model.positions={positions}",
                 "train.epochs=1", "train.max_minutes=null", f"train.threads={threads}", "schedule.warmup=50",
                 "samples.every=null", f"name={positions}"]
    _, summary = loop.start(load(EXPERIMENT, overrides), root, quiet=True, console=Console(file=io.StringIO()))
    return summary["metrics"]["val"]["loss"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        losses = {p: val_loss(p, args.steps, args.threads, Path(root)) for p in ("learned", "sinusoidal")}
    for positions, loss in losses.items():
        print(f"{positions:>10}: val loss {loss:.4f} nats/char after {args.steps} steps on {corpus()}")
    print(f"sinusoidal / learned: {losses['sinusoidal'] / losses['learned']:.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
