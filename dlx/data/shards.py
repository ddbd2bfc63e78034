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
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import torch
from PIL import Image
from pydantic import Field

from dlx.atomic import replacing
from dlx.data import decode
from dlx.data.checks import MAX_CLASSES
from dlx.data.images import IMAGE_SUFFIXES, open_image
from dlx.data.stream import StreamData
from dlx.errors import DlxError
from dlx.paths import expanded
from dlx.registry import datasets

CLASSES = "classes.txt"
RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")  # {0..9}
MAX_SHARDS = 1_000_000  # shards one pattern may name
MAX_NESTING = 10  # braces within braces
CLS_BYTES = 32  # a .cls file holds a class index: more is not one (and is not read)


@dataclass(frozen=True)
class Numbers:
    """{first..last}: each number as wide as `first` is written."""

    first: int
    last: int
    width: int


Part = str | Numbers | list  # text, numbers, or a brace's choices (each a list of parts)


def _parse(pattern: str, i: int, depth: int, inside: bool) -> tuple[list[Part], int]:
    """The parts from `i` to the end, or (`inside` a brace) to its next top-level comma or closing brace, and
    where they stop. A brace without a top-level comma or a number range stays text, as in the shell."""
    parts: list[Part] = []
    while i < len(pattern) and not (inside and pattern[i] in ",}"):
        numbers = RANGE.match(pattern, i)
        if numbers is not None:
            first, last = numbers.groups()
            if int(last) < int(first) or int(last) - int(first) >= MAX_SHARDS:
                raise DlxError(f"data.path: {numbers.group(0)} in {pattern!r} names no shards or more than "
                               f"{MAX_SHARDS:,}")
            parts.append(Numbers(int(first), int(last), len(first)))
            i = numbers.end()
            continue
        if pattern[i] == "{":
            if depth == MAX_NESTING:
                raise DlxError(f"data.path: the pattern nests braces more than {MAX_NESTING} deep")
            choices, end = [], i
            while end < len(pattern) and pattern[end] in "{," and (not choices or pattern[end] == ","):
                choice, end = _parse(pattern, end + 1, depth + 1, inside=True)
                choices.append(choice)
            if end < len(pattern) and pattern[end] == "}" and len(choices) > 1:
                parts.append(choices)
                i = end + 1
                continue
        parts.append(pattern[i])
        i += 1
    return parts, i


def _count(parts: list[Part]) -> int:
    return math.prod(part.last - part.first + 1 if isinstance(part, Numbers) else
                     sum(map(_count, part)) if isinstance(part, list) else 1 for part in parts)


def _words(parts: list[Part]) -> list[str]:
    words = [""]
    for part in parts:
        if isinstance(part, Numbers):
            ending = [str(n).zfill(part.width) for n in range(part.first, part.last + 1)]
        elif isinstance(part, list):
            ending = [word for choice in part for word in _words(choice)]
        else:
            ending = [part]
        words = [word + end for word in words for end in ending]
    return words


def expand(pattern: str) -> list[str]:
    """Brace expansion as the shell's and WebDataset's: `a-{000..002}.tar` is a-000.tar, a-001.tar, a-002.tar (the
    width of the first number kept), `{train,extra}` each word; several braces multiply, a brace within a brace
    chooses within its choice. How many names a pattern makes is counted before any is made."""
    parts, _ = _parse(pattern, 0, 0, inside=False)
    if _count(parts) > MAX_SHARDS:
        shown = pattern if len(pattern) <= 200 else pattern[:200] + "..."
        raise DlxError(f"data.path: {shown!r} names more than {MAX_SHARDS:,} shards (its braces multiply)")
    return _words(parts)


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
    """(key, offset, length, class) of each sample in one shard, in the order written. A sample is one image and
    its .cls; a shard that stops short of the tar's end marker is refused, as tarfile takes it for a shorter one."""
    images: dict[str, tuple[int, int]] = {}
    labels: dict[str, int] = {}
    try:
        with tarfile.open(shard, "r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, _, suffix = member.name.rpartition(".")
                image = "." + suffix.lower() in IMAGE_SUFFIXES
                if key in (labels if suffix == "cls" else images if image else ()):
                    kind = ".cls files" if suffix == "cls" else "images"
                    raise DlxError(f"data.path: {shard}: the sample {key!r} has two {kind}; a sample is one of each")
                if suffix == "cls":
                    text = tar.extractfile(member).read(CLS_BYTES).decode(errors="replace").strip()
                    whole = member.size <= CLS_BYTES and text.isascii() and text.isdigit()
                    if not whole or int(text) >= MAX_CLASSES:
                        raise DlxError(f"data.path: {shard}: {member.name} holds {text[:20]!r}, not a class index "
                                       f"(0..{MAX_CLASSES - 1})")
                    labels[key] = int(text)
                elif image:
                    images[key] = (member.offset_data, member.size)
            tar.fileobj.seek(tar.offset)
            if tar.fileobj.read(tarfile.BLOCKSIZE) != tarfile.NUL * tarfile.BLOCKSIZE:
                raise tarfile.ReadError(f"no tar end marker at byte {tar.offset}: truncated or damaged there")
    except (tarfile.TarError, OSError, UnicodeDecodeError) as e:
        raise DlxError(f"data.path: {shard} cannot be read as a tar shard ({e})") from None
    unlabelled = next((key for key in images if key not in labels), None)
    if unlabelled is not None:
        raise DlxError(f"data.path: {shard}: the sample {unlabelled!r} has an image but no .cls file with its class")
    imageless = next((key for key in labels if key not in images), None)
    if imageless is not None:
        raise DlxError(f"data.path: {shard}: the sample {imageless!r} has a .cls file but no image dlx reads "
                       f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    return [(key, *images[key], labels[key]) for key in images]


@datasets.register("shards", "WebDataset-style tar shards (path: 'shards/train-{000000..000009}.tar'; key.jpg + "
                             "key.cls), streamed from disk; `dlx data shard` writes them from an image folder")
def shards(*, path: str, size: Annotated[int, Field(ge=4, le=1024)] = 64, channels: Literal[1, 3] = 3) -> StreamData:
    files = [expanded(p, "data.path") for p in expand(path)]
    if len(set(files)) < len(files):
        twice = next(f for f, n in Counter(files).items() if n > 1)
        raise DlxError(f"data.path: {path!r} names {twice} twice; each shard would be read as often as it is named")
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
    try:
        names = (tuple(names_file.read_text(encoding="utf-8").split("\n")[:-1]) if names_file.is_file()
                 else tuple(map(str, range(count))))
    except (OSError, UnicodeDecodeError) as e:
        raise DlxError(f"data.path: {names_file} cannot be read as the class names, one a line ({e})") from None
    if len(names) < count:
        raise DlxError(f"data.path: the shards hold the class index {count - 1}, but {names_file} names {len(names)} "
                       f"classes")
    examples = ShardExamples(size, channels, places=places, shard_of=shard_of)
    return StreamData(examples, torch.tensor(labels), names, source=f"data.path: {path}")


def write(folder: Path, out: Path, per_shard: int) -> list[Path]:
    """The image folder as shards of `per_shard` samples, train-000000.tar, ..., and classes.txt, each written
    atomically; the images are stored as they are (no re-encoding)."""
    listing = decode.list_folder(folder, what="dlx data shard")
    names = _names_text(listing.classes, folder)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        held = "is a file" if not out.is_dir() else "already holds files"
        raise DlxError(f"dlx data shard: --out {out} {held}; give a new or empty folder (shards written there would "
                       f"replace or mix with what is there)")
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
        f.write(names)
    return written


def _names_text(classes: list[str], folder: Path) -> str:
    """classes.txt's text, one name a line: a folder name that a line cannot hold is refused before any shard."""
    for name in classes:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise DlxError(f"dlx data shard: {folder}: the class folder {name!r} has a name that is not UTF-8; "
                           f"rename it") from None
        if "\n" in name:
            raise DlxError(f"dlx data shard: {folder}: the class folder {name!r} has a line break in its name, "
                           f"which {CLASSES} cannot hold; rename it")
    return "".join(name + "\n" for name in classes)
