"""Standard image sets from a data dir in torchvision's layout, loaded whole into memory as tensors.

The files go where torchvision's own download puts them, under the data dir: the dataset's `root` setting, else
$DLX_DATA, else ~/.cache/dlx. Missing files are downloaded there (dlx.data.download) unless `download: false` or
$DLX_OFFLINE says not to; then one line names the files and the torchvision call that fetches them. MNIST-like
sets are read by torchvision itself; CIFAR and SVHN are read here from the same files, because torchvision's
classes insist on the official checksums (so they could not be tested on small files in the same formats).
Pixels stay bytes in memory and become floats in [0, 1] a batch at a time; the official test split is kept as
the test split.
"""
from __future__ import annotations

import math
import os
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlx.data.base import CLASSIFICATION, ArrayData
from dlx.data.download import data_root, ensure
from dlx.errors import DlxError
from dlx.registry import datasets

Root = str | None  # the data dir; None: $DLX_DATA, else ~/.cache/dlx


def require(root: Path, files: list[str], name: str, fetch: str) -> None:
    """A DlxError naming the missing files, where they go and how to fetch them, unless all are there."""
    missing = [f for f in files if not (root / f).is_file()]
    if missing:
        more = f" and {len(missing) - 2} more" if len(missing) > 2 else ""
        raise DlxError(f"{name}: {', '.join(missing[:2])}{more} not found in {root} (no download here); on a machine "
                       f"with internet run: python -c \"import torchvision; {fetch}\" and copy the files into {root}, "
                       f"or point data.root or $DLX_DATA at a folder that has them")


def _torchvision_set(name: str) -> Any:
    """A torchvision dataset class by name; torchvision is imported when an image set is loaded, not listed."""
    from torchvision import datasets as tv

    return getattr(tv, name)


def pixels(array: Any) -> torch.Tensor:
    """uint8 pixels (N, C, H, W) or (N, H, W) -> uint8 (N, C, H, W), kept as bytes: they become floats in [0, 1]
    a batch at a time on the training device (dlx.data.base.Splits.prepare)."""
    x = torch.as_tensor(np.ascontiguousarray(array))
    return x.unsqueeze(1) if x.dim() == 3 else x


def _check_idx(path: Path) -> None:
    """An IDX file of bytes as MNIST ships them, with as many dimensions as its name says (idx3: images, idx1:
    labels), at least one example, and the size its header says: torchvision's reader would stop a damaged one
    with a bare assertion, a reshape error, or a ValueError for a labels file in the place of images."""
    data = path.read_bytes()
    expected = int(path.name.partition("-idx")[2][:1] or 0)
    dims = data[3] if len(data) >= 4 and data[:3] == b"\x00\x00\x08" else 0
    if dims != expected or len(data) < 4 + 4 * dims:
        raise DlxError(f"{path}: not an IDX file of {expected}-dimensional bytes as MNIST's (its header is "
                       f"{data[:4].hex() or 'empty'})")
    shape = struct.unpack(f">{dims}I", data[4 : 4 + 4 * dims])
    if shape[0] == 0:
        raise DlxError(f"{path}: the header says the file holds no examples; fetch it again")
    if len(data) != 4 + 4 * dims + math.prod(shape):
        raise DlxError(f"{path}: the header says {'x'.join(map(str, shape))} bytes of data, the file holds "
                       f"{len(data) - 4 - 4 * dims}: a truncated or damaged file; fetch it again")


def _mnist_like(dataset: str, name: str, root: Root, download: bool) -> ArrayData:
    cls = _torchvision_set(name)
    base = data_root(root)
    ensure(dataset, base, download)
    raw = f"{cls.__name__}/raw"  # torchvision's layout: ROOT/MNIST/raw/train-images-idx3-ubyte, ...
    files = [f"{raw}/{os.path.splitext(os.path.basename(url))[0]}" for url, _ in cls.resources]
    require(base, files, cls.__name__, f"torchvision.datasets.{cls.__name__}('{base}', download=True)")
    for file in files:
        _check_idx(base / file)
    train, test = cls(str(base), train=True, download=False), cls(str(base), train=False, download=False)
    return ArrayData(pixels(train.data), train.targets.long(), CLASSIFICATION, tuple(cls.classes),
                     test=(pixels(test.data), test.targets.long()))


@datasets.register("mnist", "handwritten digits, 28x28 grey (60k train, 10k test); downloaded once")
def mnist(*, root: Root = None, download: bool = True) -> ArrayData:
    """download: fetch missing files into the data dir (false, or $DLX_OFFLINE=1: never)."""
    return _mnist_like("mnist", "MNIST", root, download)


@datasets.register("fashion_mnist", "Zalando's clothing images, 28x28 grey, 10 classes (60k + 10k); downloaded once")
def fashion_mnist(*, root: Root = None, download: bool = True) -> ArrayData:
    return _mnist_like("fashion_mnist", "FashionMNIST", root, download)


@datasets.register("kmnist", "Kuzushiji-MNIST: cursive Japanese characters, 28x28 grey, 10 classes (60k + 10k); "
                             "downloaded once")
def kmnist(*, root: Root = None, download: bool = True) -> ArrayData:
    return _mnist_like("kmnist", "KMNIST", root, download)


class _ArraysOnly(pickle.Unpickler):
    """CIFAR's batches are pickles: allow the numpy arrays they hold and nothing that could run code."""

    ALLOWED = {(module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
               for name in ("_reconstruct", "scalar")} | {
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise DlxError(f"{self.path}: not a CIFAR batch (it refers to {module}.{name})")
        return super().find_class(module, name)

    def __init__(self, path: Path):
        self.path = path
        self._file = path.open("rb")
        super().__init__(self._file, encoding="latin1")

    def read(self, *keys: str) -> dict:
        """The batch's dict, which must hold `keys`."""
        with self._file:
            try:
                batch = self.load()
            except (pickle.UnpicklingError, EOFError, ValueError) as e:
                raise DlxError(f"{self.path}: not a readable CIFAR batch ({e})") from None
        missing = [k for k in keys if not isinstance(batch, dict) or k not in batch]
        if missing:
            raise DlxError(f"{self.path}: not a CIFAR batch (no {' or '.join(missing)})")
        return batch


def _cifar(dataset: str, name: str, root: Root, download: bool, label_key: str) -> ArrayData:
    cls = _torchvision_set(name)
    base = data_root(root)
    ensure(dataset, base, download)
    folder = cls.base_folder  # torchvision's layout: ROOT/cifar-10-batches-py/data_batch_1, ...
    names = [f for f, _ in cls.train_list], [f for f, _ in cls.test_list]
    require(base, [f"{folder}/{f}" for f in [*names[0], *names[1], cls.meta["filename"]]], cls.__name__,
            f"torchvision.datasets.{cls.__name__}('{base}', download=True)")

    def load(files: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The batches' images in one uint8 array, each batch copied in and let go before the next is read (joined
        at the end, all of them and the joined copy would be in memory at once)."""
        planes, labels, count = np.empty((0, 3, 32, 32), np.uint8), [], 0  # rows are R, G, B planes
        for file in files:
            batch = _ArraysOnly(base / folder / file).read("data", label_key)
            rows, targets = np.asarray(batch["data"]), np.asarray(batch[label_key])
            if (rows.dtype != np.uint8 or rows.shape[1:] != (3 * 32 * 32,) or targets.shape != rows.shape[:1]
                    or targets.dtype.kind not in "iu"):
                raise DlxError(f"{base / folder / file}: not a CIFAR batch of 32x32 colour images (its data is "
                               f"{rows.dtype} of shape {rows.shape}, its labels {targets.dtype} of shape "
                               f"{targets.shape})")
            if count + len(rows) > len(planes):  # room for as many more batches of this size as there are files
                planes = np.concatenate([planes[:count], np.empty((len(rows) * len(files), 3, 32, 32), np.uint8)])
            planes[count : count + len(rows)] = rows.reshape(-1, 3, 32, 32)
            labels.append(targets)
            count += len(rows)
            del batch, rows  # let this batch go before the next is read, or two are held at once
        return pixels(planes[:count]), torch.as_tensor(np.concatenate(labels), dtype=torch.long)

    classes = _ArraysOnly(base / folder / cls.meta["filename"]).read(cls.meta["key"])[cls.meta["key"]]
    x, y = load(names[0])
    return ArrayData(x, y, CLASSIFICATION, tuple(classes), test=load(names[1]))


@datasets.register("cifar10", "small colour photos, 32x32, 10 classes (50k train, 10k test; 0.18 GB of pixels); "
                              "downloaded once")
def cifar10(*, root: Root = None, download: bool = True) -> ArrayData:
    return _cifar("cifar10", "CIFAR10", root, download, "labels")


@datasets.register("cifar100", "small colour photos, 32x32, 100 fine classes (50k train, 10k test); downloaded once")
def cifar100(*, root: Root = None, download: bool = True) -> ArrayData:
    return _cifar("cifar100", "CIFAR100", root, download, "fine_labels")


@datasets.register("svhn", "Street View house-number digits, 32x32 colour (73k train, 26k test); downloaded once")
def svhn(*, root: Root = None, download: bool = True) -> ArrayData:
    base = data_root(root)
    ensure("svhn", base, download)
    files = {split: _torchvision_set("SVHN").split_list[split][1] for split in ("train", "test")}  # ROOT/train_32x32.mat, ...
    require(base, list(files.values()), "SVHN", f"[torchvision.datasets.SVHN('{base}', split=s, download=True) "
                                                f"for s in ('train', 'test')]")

    def load(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        import scipy.io

        try:
            mat = scipy.io.loadmat(base / files[split])
            images, labels = mat["X"], mat["y"].astype(np.int64).reshape(-1)
            if images.ndim != 4 or images.shape[:3] != (32, 32, 3) or images.shape[3] != len(labels):
                raise ValueError(f"X has shape {images.shape} for {len(labels)} labels, not (32, 32, 3, N)")
            if images.dtype != np.uint8:  # pixels are bytes: floats would be read unscaled, beside a uint8 split
                raise ValueError(f"X holds {images.dtype} values, not uint8 pixels")
            if labels.size and not (labels.min() >= 1 and labels.max() <= 10):  # 10 is the digit 0: nothing else wraps
                raise ValueError(f"y holds {labels.min() if labels.min() < 1 else labels.max()}; its labels are 1..10")
        except (ValueError, TypeError, KeyError, OSError, NotImplementedError, scipy.io.matlab.MatReadError) as e:
            raise DlxError(f"{base / files[split]}: not an SVHN .mat file ({str(e).splitlines()[0]})") from None
        y = torch.as_tensor(labels) % 10  # the digit 0 is stored as label 10
        return pixels(np.transpose(images, (3, 2, 0, 1))), y  # (H, W, C, N) -> (N, C, H, W)

    x, y = load("train")
    return ArrayData(x, y, CLASSIFICATION, tuple(str(d) for d in range(10)), test=load("test"))
