"""How fast dlx's commands answer, against `python -c "import torch"` on the same machine in the same minute.

Each command is a fresh process, timed from its start to its end (wall clock), except `dlx train`, which is timed
from its start to the end of its first optimizer step: a global step hook (torch.optim's) ends the process there,
so the time holds the imports, building the config, the data, the model, the metrics, the run folder and
TensorBoard's writer, and one step. For scale, the same is timed for a bare PyTorch script: import torch, one Adam
step on a linear layer (PyTorch imports its compiler, torch._dynamo, at an optimizer's first step, so no training
script starts in less).

The commands run interleaved, one of each in turn, repeat after repeat, since this machine's speed drifts from one
second to the next; each figure is the median over the repeats, and each ratio the median command time over the
median `import torch`. The targets: --help and runs <= 0.3x; list and config <= 1.3x; train's first step on digits
<= 2x. `runs compare` draws its PNG with matplotlib, whose import alone is most of its time.

    python bench/startup.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIGITS = str(ROOT / "experiments" / "digits_cnn.yaml")

# ends the process at the first optimizer step, whoever takes it
FIRST_STEP = """
import os, sys
from torch.optim.optimizer import register_optimizer_step_post_hook
register_optimizer_step_post_hook(lambda *_: os._exit(0))
from dlx.cli import run
sys.argv = ["dlx", *sys.argv[1:]]
run()
sys.exit("no optimizer step was taken")
"""
BARE_STEP = """
import torch
layer = torch.nn.Linear(8, 2)
optimizer = torch.optim.Adam(layer.parameters())
layer(torch.randn(4, 8)).sum().backward()
optimizer.step()
"""


def commands(runs: Path) -> dict[str, tuple[list[str], float | None]]:
    """label -> (the process's argv, the target ratio)."""
    dlx = [sys.executable, "-m", "dlx"]
    return {
        "import torch": ([sys.executable, "-c", "import torch"], None),
        "dlx --help": ([*dlx, "--help"], 0.3),
        "dlx runs": ([*dlx, "runs", "--runs-dir", str(runs)], 0.3),
        "dlx runs compare": ([*dlx, "runs", "compare", str(runs / "a"), str(runs / "b"), "--out", str(runs / "c.png")], None),
        "dlx list models": ([*dlx, "list", "models"], 1.3),
        "dlx config digits_cnn.yaml": ([*dlx, "config", DIGITS], 1.3),
        "dlx train digits_cnn.yaml, to its first step": (
            [sys.executable, "-c", FIRST_STEP, "train", DIGITS, "--runs-dir", str(runs / "started"), "--quiet"], 2.0),
        "bare PyTorch, to its first Adam step": ([sys.executable, "-c", BARE_STEP], None),
    }


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ...: exit {done.returncode}\n{done.stderr[-2000:]}")
    return seconds


def two_runs(runs: Path) -> None:
    """Two small trained runs for `dlx runs` and `dlx runs compare` to read."""
    for name, lr in (("a", "0.002"), ("b", "0.004")):
        timed([sys.executable, "-m", "dlx", "train", str(ROOT / "experiments" / "digits_mlp.yaml"), "--set",
               "train.epochs=1", "--set", "model.sizes=16", "--set", f"optimizer.lr={lr}", "--set", "train.device=cpu",
               "--name", name, "--runs-dir", str(runs), "--quiet"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        runs = Path(folder) / "runs"
        two_runs(runs)
        todo = commands(runs)
        times: dict[str, list[float]] = {label: [] for label in todo}
        for _ in range(args.repeats):
            for label, (argv, _) in todo.items():
                times[label].append(timed(argv))
    torch_time = statistics.median(times["import torch"])
    print(f"start-up against `python -c \"import torch\"` ({torch_time:.2f}s): median of {args.repeats}, interleaved; "
          f"load average {os.getloadavg()[0]:.1f}")
    width = max(map(len, todo))
    for label, (_, target) in todo.items():
        median = statistics.median(times[label])
        goal = f"target <= {target}x" if target is not None else ""
        print(f"{label:<{width}}  {median:6.2f}s  ratio {median / torch_time:.2f}x  {goal}")


if __name__ == "__main__":
    main()
