"""Sampling speed of a GPT: the KV cache against recomputing the whole window at every step.

The same model (experiments/shakespeare_char_gpt.yaml's shape, block size 256) generates the same
500 new characters greedily both ways, so the texts must match; the window slides past the block
size in both. Runs alternate, the medians are compared. Prints tokens/s and the ratio (target >= 3).

    python bench/sampling_speed.py [--device cpu|cuda] [--block 256] [--tokens 500] [--repeats 3] [--threads N]
                                   [--json FILE]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cpu_threads
import report
import torch

from dlx import build
from dlx.config import load
from dlx.data.base import LANGUAGE, DataSpec
from dlx.models.decode import sample

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "shakespeare_char_gpt.yaml"


def timed(model, prompt: torch.Tensor, tokens: int, use_cache: bool) -> tuple[float, list[int]]:
    started = time.perf_counter()
    ids = list(sample(model, prompt, tokens, temperature=0.0, use_cache=use_cache))
    return time.perf_counter() - started, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    cpu_threads.add_option(parser)
    report.add_option(parser)
    args = parser.parse_args()
    cpu_threads.apply(args)
    config = load(EXPERIMENT, [f"model.block_size={args.block}"])
    spec = DataSpec((args.block,), LANGUAGE, num_classes=65, class_names=tuple(chr(32 + i) for i in range(65)))
    torch.manual_seed(0)
    model = build.model(config, spec).to(args.device).eval()  # untrained: the speed does not depend on the weights
    prompt = torch.tensor([0], device=args.device)
    cached, full = [], []
    for _ in range(args.repeats):
        seconds, with_cache = timed(model, prompt, args.tokens, use_cache=True)
        cached.append(seconds)
        seconds, without = timed(model, prompt, args.tokens, use_cache=False)
        full.append(seconds)
        assert with_cache == without, "the KV cache changed the text"
    fast, slow = args.tokens / statistics.median(cached), args.tokens / statistics.median(full)
    print(f"gpt ({config.model.settings['layers']} layers, width {config.model.settings['width']}), block {args.block}, "
          f"{args.tokens} new tokens, {torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"recompute {slow:8.1f} tokens/s  KV cache {fast:8.1f} tokens/s  ratio {fast / slow:.2f}  (target >= 3)")
    report.write(args, {"recompute_tokens_per_s": slow, "kv_cache_tokens_per_s": fast, "ratio": fast / slow,
                        "block": args.block, "tokens": args.tokens, "device": args.device})


if __name__ == "__main__":
    main()
