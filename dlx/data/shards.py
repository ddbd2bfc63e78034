"""WebDataset-style tar shards: `dlx data shard FOLDER --out DIR` writes them from an image folder, and the `shards`
dataset streams them (`data.path: "shards/train-{000000..000009}.tar"`).

A shard is a plain tar; a sample is the files sharing a key (`000017.jpg` and `000017.cls`, the class index as
text), and `classes.txt` beside the shards names the classes, one a line. The standard library's tarfile reads
and writes them: indexing a shard is one pass over its headers, after which a sample is one seek and one read,
which a DataLoader's workers do in any order; the webdataset package would add a dependency for sequential
reading alone, which would make the order of an epoch, and so an exact resume, depend on the shard layout.
"""
from __future__ import annotations

import io
import math
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import torch
from PIL import Image
from pydantic import Field

from dlx.atomic import replacing
from dlx.data import decode
from dlx.data.images import IMAGE_SUFFIXES, open_image
from dlx.data.stream import StreamData
from dlx.errors import DlxError
from dlx.registry import datasets

CLASSES = "classes.txt"
BRACES = re.compile(r"\{([^{}]*(?:,|\.\.)[^{}]*)\}")  # the first {a,b} or {0..9}
RANGE = re.compile(r"(\d+)\.\.(\d+)")
MAX_SHARDS = 1_000_000  # shards one pattern may name


def expand(pattern: str) -> list[str]:
    """Brace expansion as the shell's and WebDataset's: `a-{000..002}.tar` is a-000.tar, a-001.tar, a-002.tar (the
    width of the first number kept), `{train,extra}` each word; several braces multiply."""
    match = BRACES.search(pattern)
    if match is None:
        return [pattern]
    numbers = RANGE.fullmatch(match.group(1))
    if numbers is not None:
        first, last = numbers.groups()
        if int(last) < int(first) or int(last) - int(first) >= MAX_SHARDS:
            raise DlxError(f"data.path: {match.group(0)} in {pattern!r} names no shards or more than {MAX_SHARDS:,}")
        words = [str(i).zfill(len(first)) for i in range(int(first), int(last) + 1)]
    else:
        words = match.group(1).split(",")
    return [p for word in words for p in expand(pattern[: match.start()] + word + pattern[match.end():])]


@dataclass(frozen=True)
class ShardExamples(decode.ImageExamples):
    """The images of a set of shards, each at (shard, offset, length) of its bytes."""

    places: list[tuple[str, int, int]]
    shard_of: list[int]  # each example's shard, by its position in the pattern: rank r reads shards r, r + ranks, ...

    def __len__(self) -> int:
        return len(self.places)

    def image(self, i: int) -> Image.Image:
        shard, offset, length = self.places[i]
        with open(shard, "rb") as f:
            f.seek(offset)
            data = f.read(length)
        return open_image(io.BytesIO(data), f"data.path: {shard} at byte {offset}")


def index(shard: Path) -> list[tuple[str, int, int, int]]:
    """(key, offset, length, class) of each sample in one shard, in the order written."""
    images: dict[str, tuple[int, int]] = {}
    labels: dict[str, int] = {}
    try:
        with tarfile.open(shard, "r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, _, suffix = member.name.rpartition(".")
                if suffix == "cls":
                    text = tar.extractfile(member).read().decode().strip()
                    if not text.isdigit():
                        raise DlxError(f"data.path: {shard}: {member.name} holds {text[:20]!r}, not a class index")
                    labels[key] = int(text)
                elif "." + suffix.lower() in IMAGE_SUFFIXES:
                    images[key] = (member.offset_data, member.size)
    except (tarfile.TarError, OSError, UnicodeDecodeError) as e:
        raise DlxError(f"data.path: {shard} cannot be read as a tar shard ({e})") from None
    unlabelled = next((key for key in images if key not in labels), None)
    if unlabelled is not None:
        raise DlxError(f"data.path: {shard}: the sample {unlabelled!r} has an image but no .cls file with its class")
    return [(key, *images[key], labels[key]) for key in images]


@datasets.register("shards", "WebDataset-style tar shards (path: 'shards/train-{000000..000009}.tar'; key.jpg + "
                             "key.cls), streamed from disk; `dlx data shard` writes them from an image folder")
def shards(*, path: str, size: Annotated[int, Field(ge=4, le=1024)] = 64, channels: Literal[1, 3] = 3) -> StreamData:
    files = [Path(p).expanduser() for p in expand(path)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DlxError(f"data.path: {missing[0]}{more} not found (the shards {path!r} names)")
    places, shard_of, labels = [], [], []
    for number, shard in enumerate(files):
        for _, offset, length, label in index(shard):
            places.append((str(shard), offset, length))
            shard_of.append(number)
            labels.append(label)
    if not places:
        raise DlxError(f"data.path: the shards {path!r} hold no samples")
    names_file = files[0].parent / CLASSES
    count = max(labels) + 1
    names = tuple(names_file.read_text().split("\n")[:-1]) if names_file.is_file() else tuple(map(str, range(count)))
    if len(names) < count:
        raise DlxError(f"data.path: the shards hold the class index {count - 1}, but {names_file} names {len(names)} "
                       f"classes")
    examples = ShardExamples(size, channels, places=places, shard_of=shard_of)
    return StreamData(examples, torch.tensor(labels), names, source=f"data.path: {path}")


def write(folder: Path, out: Path, per_shard: int) -> list[Path]:
    """The image folder as shards of `per_shard` samples, train-000000.tar, ..., and classes.txt, each written
    atomically; the images are stored as they are (no re-encoding)."""
    listing = decode.list_folder(folder, what="dlx data shard")
    out.mkdir(parents=True, exist_ok=True)
    width = max(6, len(str(len(listing) - 1)))
    written = []
    for s in range(math.ceil(len(listing) / per_shard)):
        path = out / f"train-{s:06d}.tar"
        with replacing(path) as f, tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for i in range(s * per_shard, min(len(listing), (s + 1) * per_shard)):
                key = str(i).zfill(width)
                source = Path(listing.files[i])
                tar.add(source, arcname=key + source.suffix.lower())
                label = str(listing.targets[i]).encode()
                info = tarfile.TarInfo(key + ".cls")
                info.size = len(label)
                tar.addfile(info, io.BytesIO(label))
        written.append(path)
    with replacing(out / CLASSES, "w") as f:
        f.write("".join(name + "\n" for name in listing.classes))
    return written
