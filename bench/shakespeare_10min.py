"""The 10-minute comparison: experiments/shakespeare_char_gpt.yaml against a minimal hand-written char GPT.

The baseline is what one writes in an afternoon: PyTorch's own transformer layers (pre-norm, causal
mask), 4 layers of width 192 with 6 heads (1.8M parameters), block 128, batch 32, AdamW at a constant
1e-3, validation loss every 200 steps. Both train on the same contiguous train block of tiny
Shakespeare for the same wall-clock budget, one after the other (or side by side: two processes with
--only); then both final models are measured alike on every window of the validation block. Prints the
final losses, tokens/s and the load average, writes each side's result to
bench/shakespeare_10min-<side>.json and the validation curves (loss against minutes) to
bench/shakespeare_10min.png.

    DLX_DATA=../shared/data python bench/shakespeare_10min.py [--minutes 10] [--threads N]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import cpu_threads
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from dlx import build
from dlx.config import load
from dlx.data.text import TextSplits, fixed_windows
from dlx.generate.run import load_language_model
from dlx.train import loop

HERE = Path(__file__).resolve().parent
EXPERIMENT = HERE.parent / "experiments" / "shakespeare_char_gpt.yaml"


class MinimalGPT(nn.Module):
    def __init__(self, vocab: int, block: int = 128, width: int = 192, heads: int = 6, layers: int = 4):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(block, width)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm, self.head = nn.LayerNorm(width), nn.Linear(width, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        T = idx.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=idx.device)
        x = self.tok(idx) + self.pos(torch.arange(T, device=idx.device))
        return self.head(self.norm(self.blocks(x, mask=mask, is_causal=True)))


@torch.no_grad()
def val_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    total = sum(F.cross_entropy(model(x[i:i + 128]).flatten(0, 1), y[i:i + 128].flatten(), reduction="sum").item()
                for i in range(0, len(x), 128))
    model.train()
    return total / y.numel()


def baseline(data: TextSplits, minutes: float) -> tuple[nn.Module, list[tuple[float, float]], int]:
    torch.manual_seed(0)
    model = MinimalGPT(data.spec.num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    stream, generator = data.streams["train"], torch.Generator().manual_seed(0)
    offsets, curve, step = torch.arange(128), [], 0
    started = time.perf_counter()
    while time.perf_counter() - started < 60 * minutes:
        index = torch.randint(len(stream) - 128, (32, 1), generator=generator) + offsets  # (32, 128)
        loss = F.cross_entropy(model(stream[index]).flatten(0, 1), stream[index + 1].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if step % 200 == 0:
            curve.append(((time.perf_counter() - started) / 60, val_loss(model, *data["val"])))
    return model, curve, step * 32 * 128


def with_dlx(config, runs: Path) -> tuple[nn.Module, list[tuple[float, float]], int]:
    curve: list[tuple[float, float]] = []
    started = time.perf_counter()
    run, summary = loop.start(config, runs, quiet=True, on_epoch=lambda epoch, values: curve.append(
        ((time.perf_counter() - started) / 60, values["val/loss"])))
    model, _, _ = load_language_model(run.path, "last")
    return model, curve, summary["steps"] * config.train.batch_size * config.data.settings["block_size"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    cpu_threads.add_option(parser)
    parser.add_argument("--only", choices=["baseline", "dlx"], default=None,
                        help="run one side only (recipe tuning, or the two sides side by side in two processes)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="a dlx override (recipe tuning)")
    args = parser.parse_args()
    cpu_threads.apply(args)
    config = load(EXPERIMENT, ["train.device=cpu", "samples.every=null", f"train.max_minutes={args.minutes}",
                               *args.overrides])
    data = build.splits(config, torch.device("cpu"))
    full_val = fixed_windows(data.streams["val"], 128, limit=10**9)  # every window of the validation block
    with tempfile.TemporaryDirectory() as tmp:
        sides = {"baseline": lambda: baseline(data, args.minutes), "dlx": lambda: with_dlx(config, Path(tmp))}
        for name, train in sides.items():
            if args.only in (None, name):
                load_before, started = os.getloadavg()[0], time.perf_counter()
                model, curve, tokens = train()
                seconds = time.perf_counter() - started
                result = {"val_loss": val_loss(model, *full_val), "tokens_per_second": tokens / seconds,
                          "parameters": sum(p.numel() for p in model.parameters()), "minutes": seconds / 60,
                          "threads": torch.get_num_threads(), "load_average": [load_before, os.getloadavg()[0]],
                          "curve": curve}
                (HERE / f"shakespeare_10min-{name}.json").write_text(json.dumps(result, indent=1))
                print(f"{name:8s} val loss {result['val_loss']:.4f} nats/char ({result['val_loss'] / math.log(2):.3f} "
                      f"bpc)  {result['tokens_per_second']:7.0f} tokens/s  {result['parameters']} parameters  "
                      f"({result['minutes']:.1f} min, {result['threads']} threads, load average "
                      f"{load_before:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)
    print(f"budget {args.minutes:g} minutes each; target: dlx <= 1.80 nats/char, the baseline's reference 1.84")
    plot()


def plot() -> None:
    """Both sides' validation curves from their JSON files (written by this run or a parallel one)."""
    for path in sorted(HERE.glob("shakespeare_10min-*.json")):
        result = json.loads(path.read_text())
        name = path.stem.split("-", 1)[1]
        plt.plot(*zip(*result["curve"]), marker=".", label=f"{name}: {result['val_loss']:.3f} at the end")
    plt.xlabel("minutes")
    plt.ylabel("validation loss (nats/char)")
    plt.title("tiny Shakespeare, equal time budgets")
    plt.legend()
    plt.grid(alpha=0.3)
    plt.savefig(HERE / "shakespeare_10min.png", dpi=120, bbox_inches="tight")

if __name__ == "__main__":
    main()
