"""Datasets download themselves: files in the real formats (MNIST's gzipped IDX, CIFAR's tar.gz of pickles, tiny
Shakespeare's text), generated here and served from a loopback HTTP server through $DLX_DATA_MIRROR, with the
checksum table patched to their sums. The real table is compared with torchvision's own."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import datasets as tv
from typer.testing import CliRunner

from dlx import registry
from dlx.cli import app
from dlx.data import download
from dlx.errors import DlxError
from tests.test_datasets import pixels, write_cifar, write_mnist_like


class Server:
    """A loopback HTTP server of `files` ({'/mnist/x.gz': bytes}) that honours Range requests; `die_after` bytes
    makes the next answer stop there (the connection closed mid-file), `pause` slows every chunk."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests, self.die_after, self.pause, self.ranges = files, [], None, 0.0, True
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                asked = self.headers.get("Range") if server.ranges else None  # 'bytes=START-'
                start = int(asked[6:].split("-")[0]) if asked else 0
                if start >= len(body) and start:
                    self.send_error(416)
                    return
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                limit, server.die_after = server.die_after, None
                for i in range(start, len(body), 4096):
                    if limit is not None and i - start >= limit:
                        return  # the connection closes with the file unfinished
                    time.sleep(server.pause)
                    self.wfile.write(body[i : i + 4096])

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self):
        self.http.shutdown()
        self.http.server_close()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def tar_gz(folder: Path, extra: dict[str, bytes]) -> bytes:
    """A .tar.gz of `folder` (its name as the top level, as CIFAR's) and `extra` files beside it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(folder, arcname=folder.name)
        for name, data in extra.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def md5(data: bytes) -> str:
    return f"md5:{hashlib.md5(data).hexdigest()}"


@pytest.fixture
def served(tmp_path, monkeypatch):
    """mnist, cifar10 and tinyshakespeare in their real formats on a loopback mirror, the checksum table patched
    to them; returns (server, {dataset: {file name: bytes}}, data dir)."""
    made = tmp_path / "made"
    write_mnist_like(made, tv.MNIST)
    write_cifar(made, tv.CIFAR10)
    files = {"mnist": {f"{p.name}.gz": gz(p.read_bytes()) for p in sorted((made / "MNIST" / "raw").iterdir())},
             "cifar10": {"cifar-10-python.tar.gz": tar_gz(made / "cifar-10-batches-py", {"readme.html": b"<p>"})},
             "tinyshakespeare": {"input.txt": b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 50}}
    server = Server({f"/{name}/{file}": data for name, by_file in files.items() for file, data in by_file.items()})
    for name, by_file in files.items():
        patched = tuple(dataclasses.replace(s, checksum=md5(by_file[s.url.rsplit("/", 1)[1]]))
                        for s in download.CATALOGUE[name])
        monkeypatch.setitem(download.CATALOGUE, name, patched)
    monkeypatch.setenv("DLX_DATA_MIRROR", server.url)
    monkeypatch.delenv("DLX_OFFLINE", raising=False)
    yield server, files, tmp_path / "data"
    server.close()


def build(name: str, root: Path, **settings):
    return registry.datasets.get(name).build(root=str(root), **settings)


def test_the_table_is_torchvisions_own():
    sums = {"mnist": tv.MNIST, "fashion_mnist": tv.FashionMNIST, "kmnist": tv.KMNIST}
    for name, cls in sums.items():
        assert [(s.url, s.checksum) for s in download.CATALOGUE[name]] == \
            [(f"{cls.mirrors[0]}{file}", f"md5:{md5}") for file, md5 in cls.resources]
        assert [s.products[0] for s in download.CATALOGUE[name]] == \
            [f"{cls.__name__}/raw/{file.removesuffix('.gz')}" for file, _ in cls.resources]  # where vision.py reads
    for name, cls in {"cifar10": tv.CIFAR10, "cifar100": tv.CIFAR100}.items():
        (source,) = download.CATALOGUE[name]
        assert (source.url, source.file, source.checksum) == (cls.url, cls.filename, f"md5:{cls.tgz_md5}")
        read = [f for f, _ in [*cls.train_list, *cls.test_list]] + [cls.meta["filename"]]
        assert sorted(source.members) == sorted(f"{cls.base_folder}/{f}" for f in read)
    assert [(s.url, s.file, s.checksum) for s in download.CATALOGUE["svhn"]] == \
        [(url, file, f"md5:{md5}") for url, file, md5 in (tv.SVHN.split_list[s] for s in ("train", "test"))]


def test_mnist_downloads_on_first_use_and_reads_what_it_fetched(served):
    server, files, root = served
    data = build("mnist", root)
    assert torch.equal(data.x[:, 0], torch.as_tensor(pixels(12, 28, 28, seed=12)))  # as the generated files hold
    assert len(data.test[0]) == 5
    assert sorted(path for path, _ in server.requests) == sorted(f"/mnist/{f}" for f in files["mnist"])
    assert not list(root.rglob("*.part"))  # every file renamed into place once checked
    build("mnist", root)
    assert len(server.requests) == 4  # the second use downloads nothing


def test_cifar_unpacks_only_the_files_it_reads_each_whole(served):
    server, _, root = served
    data = build("cifar10", root)
    assert data.x.shape == (20, 3, 32, 32) and data.x.dtype == torch.uint8
    assert (root / "cifar-10-python.tar.gz").is_file() and not (root / "readme.html").exists()
    assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_tinyshakespeare_downloads_through_the_same_path(served):
    _, files, root = served
    data = registry.datasets.get("tinyshakespeare").build(root=str(root))
    assert data.text.encode() == files["tinyshakespeare"]["input.txt"]


@pytest.mark.parametrize("name", ["mnist", "tinyshakespeare"])
def test_a_wrong_checksum_is_one_line_and_leaves_no_file(served, name):
    server, files, root = served
    for path in server.files:
        server.files[path] = server.files[path][:-1] + b"!"  # one byte changed
    with pytest.raises(DlxError) as error:
        registry.datasets.get(name).build(root=str(root))
    assert "\n" not in str(error.value) and "md5 is not the official one" in str(error.value)
    assert [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock")] == []


@pytest.mark.parametrize("ranges", [True, False], ids=["resumed with Range", "server ignores Range: from zero"])
def test_a_server_that_dies_halfway_leaves_the_partial_file_and_the_next_run_resumes(served, ranges):
    server, files, root = served
    archive = files["cifar10"]["cifar-10-python.tar.gz"]
    half = 4096 * (len(archive) // 8192)
    server.die_after, server.ranges = half, ranges
    with pytest.raises(DlxError) as error:
        build("cifar10", root)
    message = str(error.value)
    assert "\n" not in message and "stopped at" in message and "partial file is kept" in message
    part = root / "cifar-10-python.tar.gz.part"
    assert part.stat().st_size == half and archive.startswith(part.read_bytes())
    assert not (root / "cifar-10-python.tar.gz").exists() and not (root / "cifar-10-batches-py").exists()
    assert len(build("cifar10", root).x) == 20
    assert server.requests[-1][1] == f"bytes={half}-"  # asked for the rest only (sent whole if Range is ignored)
    assert (root / "cifar-10-python.tar.gz").read_bytes() == archive and not part.exists()


def test_two_fetches_at_once_download_each_file_once(served):
    server, files, root = served
    server.pause = 0.05  # slow enough that the second starts while the first downloads
    said: list[str] = []
    results = []
    fetches = [threading.Thread(target=lambda: results.append(download.fetch("mnist", root, said.append)))
               for _ in range(2)]
    for thread in fetches:
        thread.start()
        time.sleep(0.05)
    for thread in fetches:
        thread.join(60)
    assert sorted(results) == [False, True]  # one downloaded, the other waited and found the files there
    assert len(server.requests) == len(files["mnist"])
    assert any("is downloading it" in line and "waiting" in line for line in said)


def test_offline_keeps_todays_message_and_asks_nothing(served, monkeypatch):
    server, _, root = served
    with pytest.raises(DlxError) as off:
        build("cifar10", root, download=False)
    monkeypatch.setenv("DLX_OFFLINE", "1")
    with pytest.raises(DlxError) as offline_env:
        build("cifar10", root)
    expected = (f"CIFAR10: cifar-10-batches-py/data_batch_1, cifar-10-batches-py/data_batch_2 and 5 more not found in "
                f"{root} (no download here); on a machine with internet run: python -c \"import torchvision; "
                f"torchvision.datasets.CIFAR10('{root}', download=True)\" and copy the files into {root}, or point "
                f"data.root or $DLX_DATA at a folder that has them")
    assert str(off.value) == str(offline_env.value) == expected
    with pytest.raises(DlxError, match="input.txt not found .*DLX_OFFLINE"):
        registry.datasets.get("tinyshakespeare").build(root=str(root))
    assert server.requests == []


def test_no_network_is_one_line(served, monkeypatch):
    _, _, root = served
    monkeypatch.setenv("DLX_DATA_MIRROR", "http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(DlxError) as error:
        build("mnist", root)
    assert "\n" not in str(error.value) and "cannot download http://127.0.0.1:9/mnist/" in str(error.value)


def test_dlx_data_fetch(served):
    server, _, root = served
    runner = CliRunner()
    done = runner.invoke(app, ["data", "fetch", "mnist", "tinyshakespeare", "--root", str(root)])
    assert done.exit_code == 0, done.output
    assert f"mnist: downloaded into {root}" in done.stdout and (root / "tinyshakespeare" / "input.txt").is_file()
    again = runner.invoke(app, ["data", "fetch", "mnist", "--root", str(root)])
    assert again.exit_code == 0 and f"mnist: already in {root}" in again.stdout
    unknown = runner.invoke(app, ["data", "fetch", "mnist", "cifar", "--root", str(root)])
    assert unknown.exit_code == 2 and "'cifar' is not a dataset dlx downloads (did you mean" in unknown.output
    server.die_after = 0
    (root / "cifar-10-batches-py").mkdir()
    dies = runner.invoke(app, ["data", "fetch", "cifar10", "--root", str(root)])
    assert dies.exit_code == 2 and "stopped at 0.0" in dies.output
