"""Batched per-sample augmentation (dlx) against torchvision's transforms applied image by image.

Both draw a different shift, rotation and flip for every image of a batch of 256 MNIST-sized images;
dlx does it as one affine grid and one grid_sample on the whole batch. Prints the time of each and
the ratio, measured in the same process.
"""
from __future__ import annotations

import time

import torch
from torchvision.transforms import v2

from dlx.data.augment import Augment, Augmenter

BATCH, REPEATS = 256, 50


def timed(fn) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(REPEATS):
        fn()
    return (time.perf_counter() - start) / REPEATS


def main() -> None:
    torch.set_num_threads(1)  # the same single core for both: the comparison is of the method, not of threading
    torch.manual_seed(0)
    x = torch.rand(BATCH, 1, 28, 28)
    dlx = Augmenter(Augment(shift=1, rotate=10, hflip=True), seed=0, device=torch.device("cpu"))
    per_image = v2.Compose([v2.RandomAffine(degrees=10, translate=(1 / 28, 1 / 28)), v2.RandomHorizontalFlip()])
    ours = timed(lambda: dlx(x, step=0))
    theirs = timed(lambda: torch.stack([per_image(image) for image in x]))
    print(f"batch of {BATCH} images 1x28x28, shift 1 + rotate 10 + hflip, per-sample draws")
    print(f"  dlx batched on the device : {ours * 1e3:8.2f} ms per batch")
    print(f"  torchvision image by image: {theirs * 1e3:8.2f} ms per batch")
    print(f"  ratio torchvision / dlx   : {theirs / ours:8.1f}x")


if __name__ == "__main__":
    main()
