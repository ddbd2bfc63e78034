"""Image folders as uint8 pixels: decoded by a pool of threads, cached on disk, and re-read only when they change.

A folder is listed as torchvision's ImageFolder lists it (a sub-folder per class, sorted). Each image is decoded
exactly as the in-memory path always did (RGB, a bilinear resize to size x size, grey when the model takes one
channel), so the pixels are the same bytes whichever way they were read. The cache is one .npy file under the
data dir, named by the folder and the resize settings; its content key hashes every file's name, size and
modification time, so an added, removed or rewritten image makes the next run decode the folder again.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dlx.atomic import replacing
from dlx.data.images import open_image
from dlx.errors import DlxError

CACHE_VERSION = 1  # part of every key: a change in how pixels are decoded makes older caches stale
PARALLEL_FROM = 256  # fewer images decode faster in this thread than a pool starts
CACHE_FROM = 256  # fewer images decode in well under a second: a cache file would only litter the data dir
CHUNK = 64  # images a worker decodes per task: large enough that handing out tasks costs little


@dataclass(frozen=True)
class Listing:
    """An image folder's examples in ImageFolder's order, with what the cache key needs of each file."""

    root: Path
    classes: list[str]
    files: list[str]
    targets: list[int]
    stats: list[tuple[int, int]]  # (bytes, mtime in ns) of each file

    def __len__(self) -> int:
        return len(self.files)


def _is_image_file(path: str) -> bool:
    """ImageFolder's test, plus: a regular file (a pipe named x.png would block the reader)."""
    from torchvision.datasets import folder

    return folder.has_file_allowed_extension(path, folder.IMG_EXTENSIONS) and os.path.isfile(path)


def _no_link_loops(path: Path, what: str) -> None:
    """ImageFolder follows symbolic links: one to a folder above it listed that folder's images again at every
    level down to the system's limit on links in a path (a link to the class's parent: each image 41 times),
    silently. Such a link is refused before it is followed."""
    for top, folders, _ in os.walk(path, followlinks=True):
        here = os.path.realpath(top)
        for name in folders:
            target = os.path.realpath(os.path.join(top, name))
            if here == target or here.startswith(target.rstrip(os.sep) + os.sep):
                raise DlxError(f"{what}: {os.path.join(top, name)} links to {target}, which holds the link, so its images "
                               f"would be listed again and again; remove the link")


def list_folder(path: Path, classes: list[str] | None = None, what: str = "data.path") -> Listing:
    """The folder's images and classes, as ImageFolder finds them; `classes`: those another split has."""
    from torchvision.datasets import folder

    try:
        found, index = folder.find_classes(str(path))
        _no_link_loops(path, what)
        samples = folder.make_dataset(str(path), index, is_valid_file=_is_image_file)
    except (FileNotFoundError, OSError) as e:
        raise DlxError(f"{what}: {path}: {e} (expected one sub-folder of images per class)") from None
    if classes is not None and found != classes:
        raise DlxError(f"{what}: {path} has classes {found}, but data.path has {classes}")
    stats = []
    for file, _ in samples:
        st = os.stat(file)
        stats.append((st.st_size, st.st_mtime_ns))
    return Listing(path, found, [f for f, _ in samples], [t for _, t in samples], stats)


def pixels(opened: Image.Image, size: int, channels: int) -> np.ndarray:
    """A decoded image as uint8 (C, size, size): RGB, resized bilinearly, grey for one channel."""
    image = opened.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)  # as torchvision's Resize asks of PIL
    if channels == 1:
        image = image.convert("L")
    array = np.array(image)  # writable, so that torch.from_numpy may take it as it is
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def decode(path: str, size: int, channels: int) -> np.ndarray:
    """One image file as `pixels` makes it."""
    return pixels(open_image(path, f"data.path: {path}"), size, channels)


@dataclass(frozen=True)
class ImageExamples:
    """Images on disk, decoded one by one as they are read (by a DataLoader's workers when streaming)."""

    size: int
    channels: int

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size, self.size)

    def image(self, i: int) -> Image.Image:
        raise NotImplementedError

    def read(self, i: int) -> np.ndarray:
        return pixels(self.image(i), self.size, self.channels)


@dataclass(frozen=True)
class FolderExamples(ImageExamples):
    """An image folder's files."""

    files: list[str]

    def __len__(self) -> int:
        return len(self.files)

    def image(self, i: int) -> Image.Image:
        return open_image(self.files[i], f"data.path: {self.files[i]}")


def _decode_chunk(task: tuple[list[str], int, int]) -> np.ndarray:
    files, size, channels = task
    return np.stack([decode(f, size, channels) for f in files])


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _progress(total: int):
    """A rich progress bar on a terminal; nothing in logs and pipes."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    return Progress(TextColumn("decoding images"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True, disable=not console.is_terminal or total < PARALLEL_FROM)


def _pool(workers: int) -> Executor:
    """Forked processes where the platform has fork: PIL holds the GIL for much of a small image's decode and
    resize, so on an idle 2-core machine two threads were no faster than one (2.3 s against 2.1 s for 20,000
    64x64 JPEGs) while two processes took 1.2 s; the pixels come back as small arrays. Threads elsewhere."""
    if "fork" in multiprocessing.get_all_start_methods():
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    return ThreadPoolExecutor(workers)


def decode_all(files: list[str], size: int, channels: int, threads: int | None = None) -> np.ndarray:
    """Every file as uint8 (N, C, size, size), in order, decoded by `threads` workers (default: one per core).
    A file that cannot be decoded stops the read with its one line."""
    pixels = np.empty((len(files), channels, size, size), dtype=np.uint8)
    threads = threads or cores()
    chunks = [(files[i : i + CHUNK], size, channels) for i in range(0, len(files), CHUNK)]
    parallel = threads > 1 and len(files) >= PARALLEL_FROM
    workers = _pool(max(1, min(threads, len(chunks)))) if parallel else ThreadPoolExecutor(1)
    with _progress(len(files)) as bar, workers as pool:
        task = bar.add_task("decode", total=len(files))
        decoded = pool.map(_decode_chunk, chunks) if parallel else map(_decode_chunk, chunks)
        try:
            for i, block in enumerate(decoded):
                pixels[i * CHUNK : i * CHUNK + len(block)] = block
                bar.advance(task, len(block))
        except BaseException:
            pool.shutdown(cancel_futures=True)  # a bad file or Ctrl-C: the chunks not yet started are dropped
            raise
    return pixels


def cache_dir() -> Path:
    from dlx.data.corpora import data_root

    return data_root(None) / "image-cache"


def _keys(listing: Listing, size: int, channels: int) -> tuple[str, str]:
    """(which cache: the folder and the settings, what it holds: every file's name, size and mtime)."""
    where = json.dumps([CACHE_VERSION, str(listing.root.resolve()), size, channels])
    content = json.dumps([listing.classes, [os.path.relpath(f, listing.root) for f in listing.files], listing.targets,
                          listing.stats])
    return (hashlib.sha256(where.encode()).hexdigest()[:16], hashlib.sha256(content.encode()).hexdigest()[:16])


def _read_cache(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached pixels, or None when there are none or they are damaged (a truncated file, another shape)."""
    try:
        pixels = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return pixels if pixels.dtype == np.uint8 and pixels.shape == shape else None


def _write_cache(path: Path, pixels: np.ndarray) -> None:
    """The pixels, written atomically; earlier caches of the same folder and settings are deleted. A cache that
    cannot be written (a read-only or full disk) costs only the next run's decoding, and says so."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as f:
            np.save(f, pixels, allow_pickle=False)
        for stale in path.parent.glob(f"{path.name.split('-')[0]}-*.npy"):
            if stale != path:
                stale.unlink(missing_ok=True)
    except OSError as e:
        print(f"note: could not cache the decoded images in {path.parent} ({e.strerror or e}); the next run decodes "
              f"them again", file=sys.stderr)


def load_folder(listing: Listing, size: int, channels: int) -> np.ndarray:
    """The folder's pixels as uint8 (N, C, size, size): from the cache when the folder is unchanged, else decoded
    (in parallel) and cached."""
    shape = (len(listing), channels, size, size)
    if len(listing) < CACHE_FROM:
        return decode_all(listing.files, size, channels)
    where, content = _keys(listing, size, channels)
    path = cache_dir() / f"{where}-{content}.npy"
    pixels = _read_cache(path, shape) if path.is_file() else None
    if pixels is None:
        pixels = decode_all(listing.files, size, channels)
        _write_cache(path, pixels)
    return pixels
