"""`dlx predict` on 10,000 PNG files against a hand-written loop over the same files with the run's TorchScript export
(the least a user could write: open, decode, stack, run, write a CSV row). Both read every file and write every
prediction, in the same process on one thread; prints the time of each and the ratio (target: at most 1.2).

    python bench/predict_speed.py [--images 10000]
"""
from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits

from dlx import export
from dlx.api import PredictOptions, predict
from dlx.config import load
from dlx.train import loop

ROOT = Path(__file__).resolve().parents[1]
BATCH = 256


def hand_written(model_file: Path, images: Path, out: Path) -> None:
    """Load the exported model and its class names, then predict every PNG file of the folder."""
    extra = {"dlx.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation note
        model = torch.jit.load(str(model_file), _extra_files=extra)
    class_names = json.loads(extra["dlx.json"])["class_names"]
    files = sorted(images.glob("*.png"))
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["input", "predicted", "probability"])
        for start in range(0, len(files), BATCH):
            chunk = files[start : start + BATCH]
            pixels = np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.float32)[None] for p in chunk])
            with torch.no_grad():
                probabilities = model(torch.from_numpy(pixels))
            best = probabilities.max(dim=1)
            writer.writerows([str(p), class_names[int(c)], f"{float(v):.6g}"]
                             for p, c, v in zip(chunk, best.indices, best.values))


def answers(path: Path) -> list[str]:
    with path.open() as f:
        return [row["predicted"] for row in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        config = load(ROOT / "experiments/digits_cnn.yaml", ["train.epochs=1", "train.device=cpu", "name=bench"])
        run, _ = loop.start(config, root / "runs", quiet=True)
        model_file = export.export(run.path, "torchscript")
        images = root / "images"
        images.mkdir()
        digits = np.round(load_digits().images * 255 / 16).astype(np.uint8)
        files = [images / f"{i:05d}.png" for i in range(args.images)]
        for i, path in enumerate(files):
            Image.fromarray(digits[i % len(digits)], "L").save(path)
        start = time.perf_counter()
        predict([run.path], images, PredictOptions(batch_size=BATCH, device="cpu"), out=root / "dlx.csv")
        ours = time.perf_counter() - start
        start = time.perf_counter()
        hand_written(model_file, images, root / "hand.csv")
        theirs = time.perf_counter() - start
        same = answers(root / "dlx.csv") == answers(root / "hand.csv")
    print(f"{args.images} PNG files of 8x8 pixels, batches of {BATCH}, one thread")
    print(f"  dlx predict                 : {ours:7.2f} s")
    print(f"  hand-written TorchScript loop: {theirs:7.2f} s")
    print(f"  ratio dlx / hand-written     : {ours / theirs:7.2f}  (target <= 1.2); the same answers: {same}")


if __name__ == "__main__":
    main()
