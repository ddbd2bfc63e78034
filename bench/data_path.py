"""dlx's in-memory data path against a torchvision-style Dataset + DataLoader, same data, model and work.

The data: 60,000 generated 28x28 grey images (uint8, MNIST's size) with 10 classes. Both sides train
the same small CNN with the same optimizer, batch size and augmentation (a random shift of up to one
pixel), standardised alike:

- dlx: the `tensors` dataset, standardised once and kept on the device; batches by indexing a
  shuffled tensor (dlx.data.base.Batches), shifted on the device for the whole batch at once
  (data.augment.shift=1, one grid_sample);
- torchvision: a Dataset returning one PIL image at a time, as torchvision.datasets.MNIST does,
  through RandomCrop(28, padding=1), ToTensor and Normalize, collated by a DataLoader (pinned memory
  on CUDA), with 0 and with --workers worker processes.

Each epoch is cut to --batches batches (the same on every side): the first batch, which carries an
epoch's one-off costs, counts once and the others are scaled to a full epoch. The sides alternate,
--repeats times, and each side's median is printed with the ratio. Worker processes are started and
warmed up before any clock runs, which favours the DataLoader. Also printed: the data path alone
(batches drawn, augmented and moved to the device, no training).

Then streaming: the first --folder-images of the images as PNG files in an image folder, read three ways
(the data path alone, batches on the device): dlx in memory (image_folder), dlx streaming from disk
(data.stream: true, a worker process per core decoding, standardised on the device) and torchvision's
ImageFolder + DataLoader with 4 workers (PIL, Grayscale, ToTensor, Normalize). Target: streaming at least
as fast as torchvision's loader.

    python bench/data_path.py [--device cpu|cuda] [--model cnn|mlp] [--batches 60] [--repeats 3] [--workers 2] [--threads N]
                              [--folder-images 10000] [--tiny]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from dlx import build
from dlx.config import load
from dlx.train.loop import Trainer

EXPERIMENT = Path(__file__).resolve().parents[1] / "experiments" / "digits_cnn.yaml"
SAMPLES, SIDE, CLASSES = 60_000, 28, 10
DLX = "dlx (tensors on the device, batched shift)"
MODELS = {"cnn": lambda args: [f"model.width={args.width}", "model.hidden=64"],
          "mlp": lambda args: ["model.name=mlp", "model.sizes=128-64"]}


def generate(folder: Path, seed: int = 0) -> tuple[Path, np.ndarray, np.ndarray]:
    """MNIST-shaped data: blurred blobs of random ink, as uint8 pixels (N, 28, 28) and labels (N,), also saved
    as the `tensors` dataset reads it (the 1,000 extra examples are its test split)."""
    generator = torch.Generator().manual_seed(seed)
    ink = torch.rand(SAMPLES + 1000, 1, SIDE, SIDE, generator=generator)
    ink = torch.nn.functional.avg_pool2d(ink, 5, stride=1, padding=2)  # smooth strokes rather than pixel noise
    x = (ink.clamp(0.4, 0.6) - 0.4).mul(255 / 0.2).to(torch.uint8)
    y = torch.randint(CLASSES, (SAMPLES + 1000,), generator=generator)
    path = folder / "generated28.npz"
    np.savez(path, x=x[:SAMPLES].numpy(), y=y[:SAMPLES].numpy(), x_test=x[SAMPLES:].numpy(), y_test=y[SAMPLES:].numpy())
    return path, x[:SAMPLES, 0].numpy(), y[:SAMPLES].numpy()


class Images(Dataset):
    """What torchvision.datasets.MNIST does per sample: a PIL image from uint8 pixels, then the transform."""

    def __init__(self, pixels: np.ndarray, labels: np.ndarray, transform: Callable):
        self.pixels, self.labels, self.transform = pixels, labels, transform  # (N, 28, 28) uint8, (N,)

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.pixels[i], mode="L")), int(self.labels[i])


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def epoch_seconds(batches: Iterable, limit: int, per_epoch: int, work: Callable) -> float:
    """An epoch's seconds from its first `limit` batches, each handed to `work`: the first batch once (it
    carries the epoch's one-off costs: dlx's shuffle, the workers' first fetches), the others scaled to
    the rest of the epoch."""
    batches = iter(batches)
    started = time.perf_counter()
    work(*next(batches))
    sync()
    first = time.perf_counter()
    for _, (x, y) in zip(range(limit - 1), batches):
        work(x, y)
    sync()
    return first - started + (time.perf_counter() - first) * (per_epoch - 1) / (limit - 1)


def trainer_step(trainer: Trainer, device: torch.device) -> Callable:
    """One optimizer step of a fresh copy of the run's model: forward, backward, step."""
    torch.manual_seed(trainer.config.seed)
    model = build.model(trainer.config, trainer.spec).to(device).train()
    optimizer = build.optimizer(trainer.config, model)

    def step(x, y):
        loss = trainer.loss_fn(model(x.to(device, non_blocking=True)), y.to(device, non_blocking=True))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, default=60, help="batches timed per epoch (a full epoch is 938)")
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per side, alternating; the median counts")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes (also timed with 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--width", type=int, default=16, help="the CNN's first block width")
    parser.add_argument("--model", choices=sorted(MODELS), default="cnn",
                        help="what trains: the small CNN, or an MLP whose compute leaves the data path visible")
    parser.add_argument("--folder-images", type=int, default=10_000, help="images of the streaming comparison (0: skip)")
    parser.add_argument("--tiny", action="store_true", help="a smoke test: 3 batches, 1 repeat, an MLP, 300 files")
    args = parser.parse_args()
    if args.tiny:
        args.batches, args.repeats, args.model, args.workers, args.folder_images = 3, 1, "mlp", 0, 300
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        path, pixels, labels = generate(Path(tmp))
        overrides = ["data.name=tensors", f"data.path={path}", "data.split=[0.99,0.01,0]",  # train: 59,400 of the 60,000
                     "data.augment.shift=1", *MODELS[args.model](args),
                     f"train.batch_size={args.batch_size}", f"train.device={args.device}"]
        started = time.perf_counter()
        trainer = Trainer(load(EXPERIMENT, overrides))
        setup = time.perf_counter() - started
    per_epoch = len(trainer.train_batches)
    limit = max(2, min(args.batches, per_epoch))

    def dlx_batches():
        for step, (x, y) in enumerate(trainer.train_batches.epoch(trainer.data_order)):
            yield trainer.augment(x, step), y

    # the same examples as uint8 pixels on the host, as a torchvision dataset keeps them, standardised alike
    mean, std = trainer.data.standardizer.mean.item() / 255, trainer.data.standardizer.std.item() / 255
    pipeline = transforms.Compose([transforms.RandomCrop(SIDE, padding=1), transforms.ToTensor(),
                                   transforms.Normalize((mean,), (std,))])
    dataset = Images(pixels, labels, pipeline)

    def loader(workers: int) -> DataLoader:
        return DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=workers,
                          pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                          generator=torch.Generator().manual_seed(0))

    def moved(x, y):  # the data path alone ends with the batch on the device
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    loaders = {0: loader(0), args.workers: loader(args.workers)}
    for data in loaders.values():  # start the workers and warm everything up before any clock runs
        epoch_seconds(data, 3, 3, moved)
    epoch_seconds(dlx_batches(), 3, 3, trainer_step(trainer, device))

    sides = {DLX: dlx_batches}
    sides.update({f"DataLoader, {w} workers (PIL + RandomCrop/ToTensor/Normalize)": (lambda d=d: d)
                  for w, d in loaders.items()})
    model = f"CNN width {args.width}" if args.model == "cnn" else "MLP 784-128-64-10"
    print(f"{SAMPLES} x 1 x {SIDE} x {SIDE} generated images, batch {args.batch_size}, {model}, "
          f"{args.device}, {torch.get_num_threads()} threads; {limit} of {per_epoch} batches timed, scaled to an epoch; "
          f"dlx set-up (load, standardise, move) {setup:.2f}s once per run")
    for title, work in (("training (forward, backward, step)", None), ("data path alone", moved)):
        seconds: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.repeats):
            for name, batches in sides.items():
                seconds[name].append(epoch_seconds(batches(), limit, per_epoch, work or trainer_step(trainer, device)))
        ours = statistics.median(seconds[DLX])
        print(f"\n{title}: seconds per epoch (median of {args.repeats})")
        for name, times in seconds.items():
            ratio = "" if name == DLX else f"   dlx is {statistics.median(times) / ours:.1f}x faster"
            print(f"  {name:62s} {statistics.median(times):8.2f}s{ratio}")
    if args.folder_images:
        streaming(args, device, pixels[: args.folder_images], labels[: args.folder_images], mean, std)


STREAMED = "dlx streaming (data.stream: true)"
TORCHVISION_WORKERS = 4


def streaming(args, device: torch.device, pixels: np.ndarray, labels: np.ndarray, mean: float, std: float) -> None:
    """The image folder read in memory, streamed by dlx, and by torchvision's ImageFolder + DataLoader."""
    from torchvision import datasets

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        for c in range(CLASSES):
            (root / str(c)).mkdir(parents=True)
        for i, (image, label) in enumerate(zip(pixels, labels)):
            Image.fromarray(image, mode="L").save(root / str(label) / f"{i:06d}.png")
        overrides = ["data.name=image_folder", f"data.path={root}", f"data.size={SIDE}", "data.channels=1",
                     "data.split=[0.9,0.05,0.05]", *MODELS[args.model](args), f"train.batch_size={args.batch_size}",
                     f"train.device={args.device}"]
        os.environ["DLX_DATA"] = tmp  # the decoded folder's cache goes with the folder
        in_memory = Trainer(load(EXPERIMENT, overrides)).train_batches
        streamed = Trainer(load(EXPERIMENT, [*overrides, "data.stream=true"])).train_batches
        folder = datasets.ImageFolder(str(root), transform=transforms.Compose([
            transforms.Grayscale(1), transforms.ToTensor(), transforms.Normalize((mean,), (std,))]))
        plain = DataLoader(folder, batch_size=args.batch_size, shuffle=True, num_workers=TORCHVISION_WORKERS,
                           pin_memory=device.type == "cuda", persistent_workers=True,
                           generator=torch.Generator().manual_seed(0))
        order = torch.Generator().manual_seed(0)
        sides = {"dlx in memory (image_folder)": lambda: in_memory.epoch(order),
                 STREAMED: lambda: streamed.epoch(order),
                 f"torchvision ImageFolder + DataLoader, {TORCHVISION_WORKERS} workers": lambda: plain}

        def moved(x, y):
            return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

        per_epoch = len(in_memory)
        limit = max(2, min(args.batches, per_epoch))
        for batches in sides.values():  # workers started, caches warm, before any clock runs
            epoch_seconds(batches(), 2, 2, moved)
        seconds: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.repeats):
            for name, batches in sides.items():
                seconds[name].append(epoch_seconds(batches(), limit, per_epoch, moved))
    ours = statistics.median(seconds[STREAMED])
    print(f"\nstreaming {len(pixels)} PNG files ({SIDE}x{SIDE} grey), data path alone: seconds per epoch "
          f"(median of {args.repeats}; streaming with {streaming_workers()} workers)")
    for name, times in seconds.items():
        ratio = "" if name == STREAMED else f"   streaming at {statistics.median(times) / ours:.2f}x its speed"
        print(f"  {name:62s} {statistics.median(times):8.2f}s{ratio}")


def streaming_workers() -> int:
    from dlx.data.stream import workers

    return workers()


if __name__ == "__main__":
    main()
