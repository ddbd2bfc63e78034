"""Text corpora for character-level language models: your own files, tiny Shakespeare, Python's stdlib."""
from __future__ import annotations

import glob
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field

from dlx.data.text import TextCorpus, Windows
from dlx.errors import DlxError
from dlx.paths import expanded
from dlx.registry import datasets
from dlx.data.download import data_root, ensure, sources


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DlxError(f"{path}: not UTF-8 text; convert it (e.g. iconv -t utf-8) or leave it out") from None
    except OSError as e:
        raise DlxError(f"{path}: cannot read ({e.strerror})") from None


def text_files(pattern: str) -> list[Path]:
    """A file, every file under a directory, or the files a glob matches; in name order."""
    path = expanded(pattern, "data.path")
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    else:
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    if not files:
        raise DlxError(f"data.path: '{pattern}' is no file, no directory with files and no glob that matches files")
    return files


@dataclass(kw_only=True)
class TextSettings(Windows):
    path: str  # a text file, a directory (every file under it) or a glob like 'notes/**/*.md'


@datasets.register("text", "your own text: a file, a directory or a glob of UTF-8 files, as characters",
                   config=TextSettings)
def text(settings: TextSettings) -> TextCorpus:
    return TextCorpus("".join(read_text(p) for p in text_files(settings.path)), settings, settings.path)


@dataclass(kw_only=True)
class ShakespeareSettings(Windows):
    root: str | None = None  # data dir holding tinyshakespeare/input.txt; default $DLX_DATA or ~/.cache/dlx
    download: bool = True  # fetch input.txt when it is missing (false, or $DLX_OFFLINE=1: never)


@datasets.register("tinyshakespeare", "tiny Shakespeare (1.1M characters, Karpathy's char-rnn corpus); downloaded "
                   "once into the data dir", config=ShakespeareSettings)
def tinyshakespeare(settings: ShakespeareSettings) -> TextCorpus:
    root = data_root(settings.root)
    ensure("tinyshakespeare", root, settings.download)
    path = root / "tinyshakespeare" / "input.txt"
    if not path.is_file():
        raise DlxError(f"tinyshakespeare: {path} not found (no download here: data.download is false or $DLX_OFFLINE "
                       f"is set); put Karpathy's {sources('tinyshakespeare')[0].url} there, or point data.root or "
                       f"$DLX_DATA at a folder whose tinyshakespeare/input.txt it is")
    return TextCorpus(read_text(path), settings, str(path))


SKIPPED_PACKAGES = {"test", "tests", "idle_test", "site-packages", "dist-packages"}  # tests are mostly data, not prose


@dataclass(kw_only=True)
class StdlibSettings(Windows):
    max_chars: Annotated[int, Field(ge=1000)] = 4_000_000  # the first this many characters, files in name order


@datasets.register("python_stdlib", "the .py files of this Python's standard library: an offline code corpus",
                   config=StdlibSettings)
def python_stdlib(settings: StdlibSettings) -> TextCorpus:
    root = Path(sysconfig.get_paths()["stdlib"])
    pieces, size = [], 0
    for path in sorted(root.rglob("*.py")):
        if size >= settings.max_chars:
            break
        if SKIPPED_PACKAGES.isdisjoint(path.relative_to(root).parts):
            pieces.append(path.read_text(encoding="utf-8", errors="replace"))
            size += len(pieces[-1])
    return TextCorpus("".join(pieces)[: settings.max_chars], settings, str(root))
