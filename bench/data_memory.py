"""Peak memory of training on CIFAR-10-sized data: images held as uint8 pixels (now) against float32 (as before).

The data: 50,000 generated 32x32 RGB training images and 10,000 test images written in CIFAR-10's own format (the
python pickles of cifar-10-batches-py, read by the `cifar10` dataset), ten classes told apart by a tint under
noise and a random brightness. Each side trains the same fixed small task (an MLP of 64 units, one epoch, hflip
and shift augmentation) in a process of its own, which reports the high-water mark of its resident memory (the
kernel's ru_maxrss) and the test accuracy. A third process trains on 250 images: what the process takes without
data (PyTorch, torchvision, the model), subtracted to give each side's memory for the data itself.

- uint8 (now): dlx as it is: the pixels kept as bytes, each split a list of rows of the one tensor, and a batch
  gathered and made floats on the device when it is trained on;
- float32 (as before): dlx as it held images before they were kept as bytes (commit 6bd672b's parent), rebuilt
  here from today's parts: floats in [0, 1] from the moment they are read, each split copied out of the whole
  and then standardised whole, and one shuffled copy of the train split made at the start of every epoch.

    python bench/data_memory.py [--images 50000] [--threads 2] [--tiny]
"""
from __future__ import annotations

import argparse
import json
import pickle
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "experiments" / "cifar10_vanilla_cnn.yaml"
CLASSES = 10
SIDES = {"float32": "float32 (as before)", "uint8": "uint8 (now)"}
BASELINE_IMAGES = 250


def generate(root: Path, train: int, test: int, seed: int = 0) -> None:
    """CIFAR-10's python format: cifar-10-batches-py/data_batch_1..5 and test_batch, dicts of 'data' (N, 3072) uint8
    rows (the red plane, then green, then blue) and 'labels'; batches.meta names the classes."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    tints = rng.uniform(0.4, 0.6, (CLASSES, 3)) * 255  # a colour per class, close enough to need learning
    per_batch = train // 5
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", test)]:
        labels = rng.integers(0, CLASSES, n)
        brightness = rng.normal(0, 20, (n, 1, 1))
        noise = rng.normal(0, 70, (n, 3, 1024)).astype(np.float32)
        images = np.clip(tints[labels][:, :, None] + brightness + noise, 0, 255).astype(np.uint8)
        with (folder / name).open("wb") as f:
            pickle.dump({"data": images.reshape(n, 3072), "labels": labels.tolist()}, f)
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({"label_names": [f"class{c}" for c in range(CLASSES)]}, f)


def as_before() -> None:
    """Patch dlx to hold images as it did before 6bd672b: the same memory at every step, from today's code."""
    import torch

    import dlx.build
    import dlx.data.base as base
    import dlx.data.vision as vision

    compact, split_now = vision.pixels, dlx.build.make_splits
    vision.pixels = lambda array: compact(array).float().div_(255)

    def make_splits(*args, **kwargs) -> base.Splits:
        now = split_now(*args, **kwargs)
        copies = {k: (x[:], y[:]) for k, (x, y) in now.parts.items()}  # copied while the whole tensor is held
        if now.standardizer is None:
            return base.Splits(now.spec, copies, None)
        return base.Splits(now.spec, {k: (now.standardizer(x), y) for k, (x, y) in copies.items()}, None)

    def epoch(self, generator, start=0):
        x, y = self.x, self.y
        if self.shuffle:
            order = torch.randperm(len(x), generator=generator)
            x, y = x[order], y[order]  # one gather an epoch; the batches below are views
        for i in range(start * self.batch_size, len(x), self.batch_size):
            yield self.prepare(x[i : i + self.batch_size], y[i : i + self.batch_size])

    dlx.build.make_splits, base.Batches.epoch = make_splits, epoch


def child(side: str, root: Path, runs: Path, threads: int) -> None:
    """Train the fixed task, then print the peak resident memory and the test accuracy as JSON."""
    import dlx

    if side == "float32":
        as_before()
    run = dlx.train(EXPERIMENT, runs_dir=runs, set={
        "data.root": str(root), "data.download": False, "data.split": [0.9, 0.1, 0.0],
        "model.name": "mlp", "model.sizes": "64", "model.dropout": 0.0, "train.epochs": 1, "train.batch_size": 256,
        "train.threads": threads, "train.device": "cpu", "train.patience": None, "eval.metrics": ["accuracy"],
    })
    print(json.dumps({"peak_bytes": peak_resident(), "accuracy": run.metrics["test"]["accuracy"]}))


def peak_resident() -> int:
    """This process's high-water mark of resident memory: Linux's VmHWM, which starts afresh at exec (ru_maxrss
    would carry over the peak of the parent that started this process), else ru_maxrss."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def measure(side: str, root: Path, runs: Path, threads: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", side, "--root", str(root), "--runs", str(runs),
                           "--threads", str(threads)], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"the {side} side failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000, help="training images (the test split is a fifth)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiny", action="store_true", help="2,000 images: a smoke test of the benchmark itself")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.root, args.runs, args.threads)
        return
    images = 2_000 if args.tiny else args.images
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp) / "data", images, images // 5)
        generate(Path(tmp) / "none", BASELINE_IMAGES, BASELINE_IMAGES // 5)
        results = {side: measure(side, Path(tmp) / "data", Path(tmp) / f"runs-{side}", args.threads) for side in SIDES}
        baseline = measure("uint8", Path(tmp) / "none", Path(tmp) / "runs-none", args.threads)["peak_bytes"]
    print(f"CIFAR-10-sized data: {images:,} training and {images // 5:,} test images of 32x32x3, one epoch of an MLP")
    print(f"  {'no data (250 images)':22s} peak memory {baseline / 2**20:8.0f} MB")
    for side, label in SIDES.items():
        r = results[side]
        print(f"  {label:22s} peak memory {r['peak_bytes'] / 2**20:8.0f} MB   for the data "
              f"{(r['peak_bytes'] - baseline) / 2**20:6.0f} MB   test accuracy {r['accuracy']:.4f}")
    ratio = results["float32"]["peak_bytes"] / results["uint8"]["peak_bytes"]
    data_ratio = (results["float32"]["peak_bytes"] - baseline) / max(results["uint8"]["peak_bytes"] - baseline, 1)
    same = abs(results["float32"]["accuracy"] - results["uint8"]["accuracy"])
    print(f"peak memory ratio {ratio:.2f}x for the process, {data_ratio:.2f}x for the data (float32 / uint8; "
          f"target >= 3x); test accuracy differs by {same:.4f}")


if __name__ == "__main__":
    main()
