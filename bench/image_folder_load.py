"""Loading an image folder: dlx's parallel decoding and its cache against the single-process read dlx used before.

The data: --images generated JPEGs (64x64 RGB, smooth colour fields, 10 classes) in ImageFolder's layout, read at
data.size 32. Three ways, alternated --repeats times, each the median:

- before: torchvision's ImageFolder with Resize and ToTensor, one image after another in one process, stacked
  (dlx's image_folder until the pool and the cache);
- first load: dlx's image_folder with an empty cache: forked worker processes (one per core) decode, the pixels are
  cached as uint8;
- second load: the same call again: the cache is read, the folder only listed and its files stat'ed.

Printed: each time and the ratios before / first and before / second (targets: 1.5x and 10x on 2 cores), and
whether the three give the same tensors.

    python bench/image_folder_load.py [--images 20000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SIDE, SIZE, CLASSES = 64, 32, 10


def generate(root: Path, images: int, seed: int = 0) -> Path:
    """Smooth random colour fields (JPEG's kind of picture, not noise) saved as JPEG, class by class."""
    rng = np.random.default_rng(seed)
    for c in range(CLASSES):
        (root / f"class{c}").mkdir(parents=True)
    for i in range(images):
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((SIDE, SIDE), Image.Resampling.BICUBIC).save(
            root / f"class{i % CLASSES}" / f"{i:06d}.jpg", quality=90)
    return root


def before(root: Path) -> torch.Tensor:
    """The read dlx did until now: torchvision's ImageFolder, one image at a time, in this process."""
    from torchvision import datasets, transforms

    folder = datasets.ImageFolder(str(root), transform=transforms.Compose([transforms.Resize((SIZE, SIZE)),
                                                                           transforms.ToTensor()]))
    return torch.stack([image for image, _ in folder])


def dlx_load(root: Path) -> torch.Tensor:
    from dlx.data.files import image_folder

    return image_folder(path=str(root), size=SIZE).x  # uint8 pixels: what training holds


def timed(fn, *args) -> tuple[float, torch.Tensor]:
    started = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # the read is the work measured, not a tensor op's threads
    import torchvision.datasets  # noqa: F401  (imported before any clock runs: both sides use it)
    import dlx.data.files  # noqa: F401
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DLX_DATA"] = str(Path(tmp) / "data")  # the cache goes here
        root = generate(Path(tmp) / "images", args.images)
        times: dict[str, list[float]] = {"before": [], "first": [], "second": []}
        same = True
        for _ in range(args.repeats):
            shutil.rmtree(Path(tmp) / "data", ignore_errors=True)
            t_before, x_before = timed(before, root)
            t_first, x_first = timed(dlx_load, root)
            t_second, x_second = timed(dlx_load, root)
            # dlx holds the pixels; a batch becomes these floats when the model reads it (Splits.prepare)
            same &= torch.equal(x_before, x_first.float().div(255)) and torch.equal(x_first, x_second)
            for name, t in zip(times, (t_before, t_first, t_second)):
                times[name].append(t)
        median = {name: statistics.median(t) for name, t in times.items()}
    print(f"{args.images} JPEGs of {SIDE}x{SIDE} read at {SIZE}x{SIZE}, {os.cpu_count()} cores, median of "
          f"{args.repeats}")
    print(f"  before (one process, ImageFolder)  {median['before']:8.2f} s")
    print(f"  dlx first load (pool, then cache)  {median['first']:8.2f} s   ratio {median['before'] / median['first']:.2f}x")
    print(f"  dlx second load (cache)            {median['second']:8.2f} s   ratio {median['before'] / median['second']:.2f}x")
    print(f"  the same tensors: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
