"""Datasets that download themselves into the data dir: where each file comes from, its checksum, and one fetch
that can be interrupted anywhere and run by two processes at once.

dlx has its own downloader rather than torchvision's download_and_extract_archive, which restarts a file from
zero after a dropped connection (no HTTP Range), lets two processes write the same file at once, writes the
archive in place as it arrives, and fetches only from the URLs written in its classes. Here a file grows as
<file>.part, resumed with a Range request; it takes its real name only once its checksum (torchvision's own MD5s,
the corpus's SHA-256) is right, and archives are unpacked file by file, each written whole or not at all. A lock
per dataset makes a second process wait for the first and then find the files there. $DLX_DATA_MIRROR serves
every file from another place (MIRROR/<dataset>/<file name>): an organisation's copy, or a test's loopback server.
Nothing here imports torch: `dlx data fetch` starts at once.
"""
from __future__ import annotations

import fcntl
import gzip
import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dlx.atomic import FILE_MODE, replacing
from dlx.errors import DlxError, did_you_mean
from dlx.paths import expanded

TIMEOUT = 30  # seconds without a byte before a download counts as stopped (it resumes on the next attempt)
CHUNK = 1 << 20
MB = 1e6


def data_root(root: str | None) -> Path:
    """data.root, else $DLX_DATA, else ~/.cache/dlx: where downloaded datasets are kept."""
    return expanded(root or os.environ.get("DLX_DATA") or "~/.cache/dlx", "the data dir")


def offline() -> bool:
    """$DLX_OFFLINE=1 (or true, yes): nothing is downloaded, whatever data.download says."""
    return os.environ.get("DLX_OFFLINE", "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Source:
    """One file to download: from `url` to `file` (relative to the data dir, in torchvision's layout)."""

    url: str
    file: str
    checksum: str  # "md5:<hex>" or "sha256:<hex>" of the file as downloaded
    members: tuple[str, ...] = ()  # a .tar.gz: the files it yields (relative to the data dir) that dlx reads

    @property
    def products(self) -> tuple[str, ...]:
        """What the data dir must hold once this source is fetched: the unpacked files, or the file itself."""
        if self.members:
            return self.members
        return (self.file.removesuffix(".gz"),)

    def present(self, root: Path) -> bool:
        return all((root / p).is_file() for p in self.products)


def _mnist_like(folder: str, url: str, md5s: tuple[str, str, str, str]) -> tuple[Source, ...]:
    """torchvision's MNIST layout: ROOT/<folder>/raw/<name>.gz, unpacked beside as ROOT/<folder>/raw/<name>."""
    names = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return tuple(Source(f"{url}{name}.gz", f"{folder}/raw/{name}.gz", f"md5:{md5}") for name, md5 in zip(names, md5s))


def _cifar(url: str, md5: str, folder: str, files: tuple[str, ...]) -> tuple[Source, ...]:
    return (Source(url, url.rsplit("/", 1)[1], f"md5:{md5}", tuple(f"{folder}/{f}" for f in files)),)


def _svhn(split: str, md5: str) -> Source:
    return Source(f"http://ufldl.stanford.edu/housenumbers/{split}_32x32.mat", f"{split}_32x32.mat", f"md5:{md5}")


# the URLs and MD5s are torchvision's (datasets/mnist.py, cifar.py, svhn.py; tests/test_download.py compares them)
CATALOGUE: dict[str, tuple[Source, ...]] = {
    "mnist": _mnist_like("MNIST", "https://ossci-datasets.s3.amazonaws.com/mnist/", (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
        "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")),
    "fashion_mnist": _mnist_like("FashionMNIST", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
        "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")),
    "kmnist": _mnist_like("KMNIST", "http://codh.rois.ac.jp/kmnist/dataset/kmnist/", (
        "bdb82020997e1d708af4cf47b453dcf7", "e144d726b3acfaa3e44228e80efcd344",
        "5c965bf0a639b31b8f53240b1b52f4d7", "7320c461ea6c1c855c0b718fb2a4b134")),
    "cifar10": _cifar("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                      "cifar-10-batches-py", (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")),
    "cifar100": _cifar("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                       "cifar-100-python", ("train", "test", "meta")),
    "svhn": (_svhn("train", "e26dedcc434d2e4c54c9b2d4a06d8373"), _svhn("test", "eb5a983be6a315427106f1b164d9cef3")),
    "tinyshakespeare": (Source(
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        "tinyshakespeare/input.txt", "sha256:86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),),
}


def sources(name: str) -> tuple[Source, ...]:
    if name not in CATALOGUE:
        raise DlxError(f"'{name}' is not a dataset dlx downloads{did_you_mean(name, CATALOGUE)}")
    return CATALOGUE[name]


def url_of(name: str, source: Source) -> str:
    """The source's own URL, or its place on $DLX_DATA_MIRROR: MIRROR/<dataset>/<file name>."""
    mirror = os.environ.get("DLX_DATA_MIRROR", "").strip()
    if mirror and "://" not in mirror:  # urllib's Request raises a bare ValueError for an address without a scheme
        raise DlxError(f"$DLX_DATA_MIRROR={mirror!r} is not a URL; give one such as https://host/path or "
                       f"file:///path")
    return f"{mirror.rstrip('/')}/{name}/{source.url.rsplit('/', 1)[1]}" if mirror else source.url


def ensure(name: str, root: Path, download: bool) -> None:
    """Fetch dataset `name` into `root` when files are missing and downloading is on (data.download, and no
    $DLX_OFFLINE); the caller then reads the files, or says which are missing."""
    if download and not offline():
        fetch(name, root)


def fetch(name: str, root: Path, say=None) -> bool:
    """Download and unpack what dataset `name` lacks in `root`; False when nothing was missing (or another process
    fetched it meanwhile).
    `say` prints a line (default: stderr)."""
    todo = [s for s in sources(name) if not s.present(root)]
    if not todo:
        return False
    say = say or _stderr
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DlxError(f"{name}: cannot create the data dir {root} ({e.strerror}); set data.root or $DLX_DATA") \
            from None
    fetched = False
    with _lock(root, name, say):
        for source in todo:
            if source.present(root):  # another process fetched it while this one waited for the lock
                continue
            archive = root / source.file
            if not archive.is_file():
                _download(name, url_of(name, source), archive, source.checksum, say)
            elif not _matches(archive, source.checksum):
                raise DlxError(f"{name}: {archive} is not the official file (its {source.checksum.split(':')[0]} "
                               f"differs); delete it and run again")
            _unpack(name, source, root)
            fetched = True
    return fetched


def _stderr(line: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(line, highlight=False, soft_wrap=True, markup=False)


@contextmanager
def _lock(root: Path, name: str, say) -> Iterator[None]:
    """One download of a dataset at a time: a second process waits here, then finds the files in place. The kernel
    drops a flock when its process ends, however it ends, so a killed download never leaves the lock held."""
    path = root / f".{name}.download.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, FILE_MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 100, 0).decode(errors="replace").strip()
            say(f"{name}: another dlx process{f' ({holder})' if holder else ''} is downloading it into {root}; waiting")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)


def _hash(path: Path, checksum: str) -> str:
    digest = hashlib.new(checksum.split(":", 1)[0])
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _matches(path: Path, checksum: str) -> bool:
    return _hash(path, checksum) == checksum.split(":", 1)[1]


def _progress(what: str, total: int | None, done: int):
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                        TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal)
    return progress, progress.add_task(what, total=total, completed=done)


def _download(name: str, url: str, dest: Path, checksum: str, say) -> None:
    """`url` -> `dest`, through dest.part: resumed from where an earlier attempt stopped, renamed only when whole
    and right. A stop halfway keeps the partial file; a wrong checksum deletes it (resuming it could not help)."""
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    resumed = "" if not have else f", resuming at {have / MB:.1f} MB"
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT)
    except urllib.error.HTTPError as e:
        if not (e.code == 416 and have):  # 416: nothing after `have` bytes, so the partial file may be whole
            raise DlxError(f"{name}: {url} answered {e.code} ({e.reason}); put the files in {dest.parent} yourself, "
                           f"or try again later") from None
        response = None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise DlxError(f"{name}: cannot download {url} ({getattr(e, 'reason', e)}); run again when online, or put "
                       f"the files in {dest.parent} yourself{' (the partial file is kept)' if have else ''}") from None
    if response is not None:
        with response:
            if response.status == 206 and _range_start(response) != have:  # bytes from elsewhere: nothing fits
                part.unlink()
                raise DlxError(f"{name}: {url} answered a resumed download with the wrong part of the file; the "
                               f"partial file was deleted: run again to start afresh")
            start = have if response.status == 206 else 0  # a server that ignores Range sends the whole file
            length = response.length
            total = None if length is None else start + length
            say(f"{name}: downloading {url} ({_size(total)}{resumed if start else ''})")
            done = _receive(name, url, response, part, start, total)
        if total is not None and done < total:
            raise DlxError(f"{name}: the download of {url} stopped at {done / MB:.1f} of {total / MB:.1f} MB (the "
                           f"server closed the connection); the partial file is kept: run again to resume")
    if not _matches(part, checksum):
        part.unlink()
        raise DlxError(f"{name}: {url} sent a file whose {checksum.split(':')[0]} is not the official one (a changed "
                       f"or damaged file); it was deleted, nothing was kept: run again, or check $DLX_DATA_MIRROR")
    with part.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(part, dest)


def _range_start(response) -> int | None:
    """Where a 206 answer's bytes start, from 'Content-Range: bytes START-END/TOTAL'."""
    value = response.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _size(total: int | None) -> str:
    return "size unknown" if total is None else f"{total / MB:.1f} MB"


def _receive(name: str, url: str, response, part: Path, start: int, total: int | None) -> int:
    """The response's bytes appended to `part` from `start` on; returns the part's size. A stop halfway is one
    line, with the bytes received kept for the next attempt."""
    done = start
    progress, task = _progress(f"{name}: {part.name.removesuffix('.part')}", total, start)
    with progress, part.open("r+b" if start else "wb") as f:
        f.seek(start)
        f.truncate()
        try:
            while block := response.read(CHUNK):
                f.write(block)
                done += len(block)
                progress.update(task, completed=done)
        except (OSError, http.client.HTTPException) as e:  # a reset connection, a timeout
            f.flush()
            raise DlxError(f"{name}: the download of {url} stopped at {done / MB:.1f} MB of {_size(total)} "
                           f"({e or type(e).__name__}); the partial file is kept: run again to resume") from None
    return done


def _unpack(name: str, source: Source, root: Path) -> None:
    """A downloaded .gz or .tar.gz into the files dlx reads, each written whole or not at all; a plain file is
    already what dlx reads."""
    archive = root / source.file
    try:
        if source.members:
            with tarfile.open(archive, "r:gz") as tar:
                wanted = set(source.members)
                for member in tar:
                    if member.name in wanted and member.isfile():
                        (root / member.name).parent.mkdir(parents=True, exist_ok=True)
                        with tar.extractfile(member) as src, replacing(root / member.name) as dst:
                            shutil.copyfileobj(src, dst, CHUNK)
                        wanted.discard(member.name)
            if wanted:
                raise DlxError(f"{name}: {archive} holds no {', '.join(sorted(wanted))}; delete it and run again")
        elif source.file.endswith(".gz"):
            with gzip.open(archive) as src, replacing(root / source.products[0]) as dst:
                shutil.copyfileobj(src, dst, CHUNK)
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DlxError(f"{name}: cannot unpack {archive} ({e}); delete it and run again") from None
