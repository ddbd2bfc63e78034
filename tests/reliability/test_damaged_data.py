"""Data files dlx reads that may hurt: damaged or odd .npz / .pt / CSV files and image folders, data that cannot
train (NaN features, one class, too few rows) and absurd sizes. Each is refused in one line, before anything
trains; through the CLI it is exit 2 and no run folder."""
from __future__ import annotations

import io
import os
import pickle
import random
import signal
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner
from torchvision import datasets as tv

from dlx import build
from dlx.cli import app
from dlx.config import load
from dlx.data import checks
from dlx.errors import DlxError
from tests.test_datasets import write_cifar, write_mnist_like, write_svhn

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")
RNG = np.random.default_rng(0)


def experiment(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "damaged.yaml"
    path.write_text(yaml.safe_dump({"name": "damaged", "data": data, "model": {"name": "mlp", "sizes": 8},
                                    "train": {"epochs": 1, "batch_size": 8, "device": "cpu"}}))
    return path


@pytest.fixture(autouse=True)
def no_hang():
    """A test that would block (reading a pipe) fails after 20 s instead of hanging the suite."""
    def stuck(*_):
        raise TimeoutError("blocked")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def refused(tmp_path: Path, data: dict, message: str) -> str:
    """Loading, checking and splitting the data raise one DlxError line holding `message`."""
    config = load(experiment(tmp_path, data))  # a valid config: the data itself is refused
    with pytest.raises(DlxError) as error:
        build.splits(config, CPU)
    text = str(error.value)
    assert "\n" not in text and message in text, text
    return text


# --- files that write themselves -----------------------------------------------------------------------------
def npz(**arrays) -> Callable[[Path], dict]:
    def write(tmp: Path) -> dict:
        np.savez(tmp / "data.npz", **arrays)
        return {"name": "tensors", "path": str(tmp / "data.npz")}
    return write


def raw(name: str, content: bytes | Callable[[], bytes]) -> Callable[[Path], dict]:
    def write(tmp: Path) -> dict:
        (tmp / name).write_bytes(content() if callable(content) else content)
        return {"name": "tensors", "path": str(tmp / name)}
    return write


def pt(obj) -> Callable[[Path], dict]:
    def write(tmp: Path) -> dict:
        torch.save(obj, tmp / "data.pt")
        return {"name": "tensors", "path": str(tmp / "data.pt")}
    return write


def fifo(name: str, dataset: str) -> Callable[[Path], dict]:
    def write(tmp: Path) -> dict:
        os.mkfifo(tmp / name)
        return {"name": dataset, "path": str(tmp / name), **({"target": "y"} if dataset == "csv" else {})}
    return write


def table(text: str | bytes, target: str = "y") -> Callable[[Path], dict]:
    def write(tmp: Path) -> dict:
        (tmp / "t.csv").write_bytes(text if isinstance(text, bytes) else text.encode())
        return {"name": "csv", "path": str(tmp / "t.csv"), "target": target}
    return write


def good_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=RNG.normal(size=(40, 3)), y=np.arange(40) % 2)
    return buffer.getvalue()


def npz_bomb() -> bytes:
    """An .npz whose x claims 10^7 x 10^6 float64 (80 TB) in a header of a few bytes, with no data behind it."""
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**7, 10**6)}
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, header)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", member.getvalue())
        archive.writestr("y.npy", member.getvalue())
    return buffer.getvalue()


def rows(n: int, **columns: Callable[[int], str]) -> str:
    names = ["a", "b", "y"] + list(columns)
    body = [[str(i), str(i % 3), str(i % 2)] + [make(i) for make in columns.values()] for i in range(n)]
    return "\n".join(",".join(r) for r in [names, *body]) + "\n"


def with_cell(line: int, column: int, value: str, n: int = 30) -> str:
    lines = rows(n).splitlines()
    cells = lines[line - 1].split(",")
    cells[column] = value
    lines[line - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


X = RNG.normal(size=(30, 3)).astype(np.float32)
Y = np.arange(30) % 3
NAN_X = X.copy()
NAN_X[7, 2] = np.nan

DAMAGED = {  # each file, and what its one line must say
    "npz: text features": (npz(x=np.array([["a", "b"]] * 30), y=Y), "not numbers"),
    "npz: text labels": (npz(x=X, y=np.array(["cat"] * 30)), "not numbers"),
    "npz: Python objects": (npz(x=X, y=np.array([{"a": 1}] * 30, dtype=object)), "not numbers"),
    "npz: dates": (npz(x=X, y=np.array(["2020-01-01"] * 30, dtype="M8[D]")), "not numbers"),
    "npz: negative labels": (npz(x=X, y=Y - 1), "class index -1"),
    "npz: zero examples": (npz(x=np.zeros((0, 3)), y=np.zeros(0, int)), "has no examples"),
    "npz: 0-d x": (npz(x=np.float32(3), y=Y), "'x' is a single number"),
    "npz: 0-d y": (npz(x=X, y=np.int64(1)), "'y' is a single number"),
    "npz: one number per example": (npz(x=X[:, 0], y=Y), "has shape (30,)"),
    "npz: no features": (npz(x=np.zeros((30, 0)), y=Y), "at least one feature"),
    "npz: x and y lengths differ": (npz(x=X, y=Y[:20]), "30 examples but y has shape (20,)"),
    "npz: truncated": (raw("data.npz", lambda: good_npz()[:300]), "cannot be read"),
    "npz: random bytes": (raw("data.npz", random.Random(0).randbytes(2048)), "cannot be read"),
    "npz: empty": (raw("data.npz", b""), "cannot be read"),
    "npz: a .npy inside": (raw("data.npz", b"\x93NUMPY\x01\x00" + b" " * 64), "cannot be read"),
    "npz: foreign member": (npz(x=X, y=Y, weights=X), "holds 'weights', which dlx does not read"),
    "npz: a member named like one": (npz(x_tset=X, x=X, y=Y), "did you mean 'x_test'"),
    "npz: misspelled member": (npz(X=X, y=Y), "holds 'X', which dlx does not read"),
    "npz: x_test without y_test": (npz(x=X, y=Y, x_test=X), "has no y_test"),
    "npz: labels of 2e9": (npz(x=X, y=np.array([0, 2_000_000_000] * 15)), f"at most {checks.MAX_CLASSES} classes"),
    "npz: a test split of another width": (npz(x=X, y=Y, x_test=X[:, :2], y_test=Y), "x_test has examples of shape (2,)"),
    "npz: NaN feature": (npz(x=NAN_X, y=Y), "x holds nan at example 7, position (2,)"),
    "npz: infinite regression target": (npz(x=X, y=np.where(Y == 2, np.inf, 0.5)), "y holds inf at example 2"),
    "npz: NaN test feature": (npz(x=X, y=Y, x_test=NAN_X, y_test=Y), "x_test holds nan"),
    "npz: fractional class labels": (lambda tmp: {**npz(x=X, y=Y + 0.5)(tmp), "task": "classification"},
                                     "holds 0.5 at example 0, not a class index"),
    "npz: complex features": (npz(x=X + 1j, y=Y), "real numbers"),
    "npz: one class": (npz(x=X, y=np.zeros(30, int)), "holds only the class '0'"),
    "npz: bomb header": (raw("data.npz", npz_bomb), "more than half the free memory"),
    "npz: a pipe": (fifo("data.npz", "tensors"), "not a regular file"),
    "npz: a directory": (lambda tmp: {"name": "tensors", "path": str(tmp)}, "is a directory"),
    "npz: another suffix": (raw("data.npy", b"0"), "neither .npz nor .pt"),
    "pt: a pickle": (pt({"x": torch.zeros(30, 3), "y": Path("labels")}), "holds Python objects besides tensors"),
    "pt: integer keys": (pt({0: torch.zeros(30, 3), 1: torch.zeros(30)}), "keys that are not names (0, 1)"),
    "pt: tuple keys": (pt({("x", 1): torch.zeros(30, 3)}), "keys that are not names"),
    "pt: a list": (pt([torch.zeros(30, 3), torch.zeros(30)]), "holds a list, not a dict of tensors"),
    "pt: a list as labels": (pt({"x": torch.zeros(30, 3), "y": [0, 1] * 15}), "'y' holds a list, not a tensor"),
    "pt: truncated": (lambda tmp: raw("data.pt", (torch.save({"x": torch.zeros(30, 3), "y": torch.zeros(30)},
                                                              tmp / "d.pt"), (tmp / "d.pt").read_bytes()[:200])[1])(tmp),
                      "cannot be read"),
    "pt: random bytes": (raw("data.pt", random.Random(1).randbytes(2048)), "cannot be read"),
    "pt: sparse features": (pt({"x": torch.eye(30).to_sparse(), "y": torch.arange(30) % 2}), "dense"),
    "pt: 0-d y": (pt({"x": torch.zeros(30, 3), "y": torch.tensor(1)}), "'y' is a single number"),
    "csv: a field over the csv module's limit": (table("a,y\n" + "1" * 200_000 + ",0\n"), "field larger than field limit"),
    "csv: not UTF-8": (table("a,y\ncaf\xe9,0\n".encode("latin-1")), "not UTF-8"),
    "csv: three rows": (table(rows(3)), "3 examples are too few"),
    "csv: a pipe": (fifo("t.csv", "csv"), "not a regular file"),
    "csv: a directory": (lambda tmp: {"name": "csv", "path": str(tmp), "target": "y"}, "is a directory"),
    "csv: NaN feature": (table(with_cell(5, 0, "nan")), "line 5, column 'a': 'nan' is not a finite"),
    "csv: infinite feature": (table(with_cell(9, 1, "-inf")), "line 9, column 'b'"),
    "csv: beyond float32": (table(with_cell(3, 0, "1e39")), "line 3, column 'a': '1e39'"),
    "csv: NaN among number labels": (table(with_cell(12, 2, "NaN")), "line 12, column 'y'"),
    "csv: one class": (table("a,y\n" + "".join(f"{i},same\n" for i in range(30))), "holds only the class 'same'"),
    "csv: a column twice": (table("a,a,y\n1,2,0\n"), "column 'a' twice"),
    "csv: an empty cell": (table(with_cell(6, 1, "")), "line 6 has an empty cell in column 'b'"),
    "csv: a short row": (table(rows(10) + "1,2\n"), "line 12 has 2 fields"),
    "csv: an empty file": (table(""), "needs a header row"),
    "csv: a header and blank lines": (table("a,y\n\n \n"), "has no examples"),
    "split: a share of 0": (lambda tmp: {**npz(x=X, y=Y)(tmp), "split": [1.0, 0.0, 0.2]},
                            "leaves the val split without examples: give the val split a share above 0"),
    "split: more folds than examples": (lambda tmp: {**npz(x=X, y=Y)(tmp), "fold": {"k": 40, "index": 40}},
                                        "30 examples are too few"),
    "text: a pipe": (fifo("t.txt", "text"), "no file, no directory with files"),
    "text: not UTF-8": (lambda tmp: ((tmp / "t.txt").write_bytes(b"caf\xe9 " * 500), text(tmp, content=None))[1],
                        "not UTF-8 text"),
}


@pytest.mark.parametrize("case", DAMAGED)
def test_a_damaged_data_file_is_refused_in_one_line(tmp_path, case):
    write, message = DAMAGED[case]
    text = refused(tmp_path, write(tmp_path), message)
    assert "weights_only" not in text  # torch's advice to load the file unsafely is never passed on


# --- image folders -------------------------------------------------------------------------------------------
def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def image_folder(root: Path, classes=("cat", "dog"), odd: tuple[str, bytes] | None = None) -> dict:
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((6, 6, 3), 40 * c + i, dtype=np.uint8)).save(root / name / f"{i}.png")
    if odd is not None:
        (root / classes[0] / odd[0]).write_bytes(odd[1])
    return {"name": "image_folder", "path": str(root), "size": 8}


@pytest.mark.parametrize(("odd", "message"), [
    (("bomb.png", png_claiming(20_000, 20_000)), "bomb.png: cannot read it as an image (Image size (400000000 pixels) "
                                                 "exceeds limit"),
    (("big.png", png_claiming(10_000, 10_000)), "big.png: cannot read it as an image (Image size (100000000 pixels) "
                                                "exceeds limit of 89478485"),
    (("broken.png", b"\x89PNG\r\n\x1a\nnot really"), "broken.png: cannot read it as an image"),
    (("text.jpg", b"hello"), "text.jpg: cannot read it as an image"),
], ids=["bomb-400Mpx", "over-the-limit-100Mpx", "truncated", "text"])
def test_an_image_folder_with_a_bad_file_names_it_in_one_line(tmp_path, odd, message):
    refused(tmp_path, image_folder(tmp_path / "images", odd=odd), message)


def test_a_pipe_named_like_an_image_is_passed_over_not_waited_on(tmp_path):
    data = image_folder(tmp_path / "images")
    os.mkfifo(tmp_path / "images" / "cat" / "pipe.png")
    assert len(build.dataset(load(experiment(tmp_path, data))).x) == 10


def test_an_image_folder_of_one_class_is_refused(tmp_path):
    refused(tmp_path, image_folder(tmp_path / "images", classes=("cat",)), "holds only the class 'cat'")


# --- nothing unbounded ---------------------------------------------------------------------------------------
TEXT = "the cat sat on the mat. " * 100


def text(tmp: Path, **settings) -> dict:
    content = settings.pop("content", TEXT)
    if content is not None:  # None: keep the file there
        (tmp / "t.txt").write_text(content)
    return {"name": "text", "path": str(tmp / "t.txt"), **settings}


@pytest.mark.parametrize(("data", "message"), [
    (lambda tmp: text(tmp, steps_per_epoch=10**12), "data.steps_per_epoch: input should be less than or equal to 1000000"),
    (lambda tmp: text(tmp, eval_windows=10**12), "data.eval_windows: input should be less than or equal to 1000000"),
    (lambda tmp: text(tmp, block_size=10**12), "data.block_size: input should be less than or equal to 1000000"),
    (lambda tmp: {"name": "image_folder", "path": str(tmp), "size": 100_000}, "data.size: input should be less than"),
    (lambda tmp: {"name": "oak", "seed": 2**70}, "data.seed: input should be less than 9223372036854775808"),
    (lambda tmp: {"name": "bitpattern", "seed": 2**64}, "data.seed: input should be less than"),
    (lambda tmp: {"name": "blobs", "features": 10**9}, "data.features: input should be less than or equal to 100000"),
    (lambda tmp: {"name": "runsum", "n": 10**7}, "data.n: input should be less than or equal to 1000000"),
], ids=["steps_per_epoch", "eval_windows", "block_size", "image-size", "oak-seed", "bitpattern-seed", "blob-features",
        "runsum-n"])
def test_an_absurd_count_in_the_data_settings_is_refused_by_its_bound(tmp_path, data, message):
    with pytest.raises(DlxError) as error:
        load(experiment(tmp_path, data(tmp_path)))
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.fixture
def little_memory(monkeypatch):
    """A machine with 1 MB free: whatever would take more than half of it is refused before it is allocated."""
    monkeypatch.setattr(checks, "free_memory", lambda: 2**20)


@pytest.mark.parametrize(("data", "message"), [
    (lambda tmp: {"name": "runsum", "n": 100_000, "length": 1000}, "data.n=100000 streams of data.length=1000"),
    (lambda tmp: {"name": "blobs", "n": 10**7, "features": 100_000}, "data.n=10000000 points of data.features=100000"),
    (lambda tmp: table(rows(500, id=lambda i: f"id{i}"))(tmp), "column 'id' one-hot encoded (500 distinct words)"),
    (npz(x=RNG.normal(size=(20_000, 10)), y=np.arange(20_000) % 2), "data.npz's arrays need"),
], ids=["runsum", "blobs", "csv-one-hot", "npz"])
def test_data_beyond_the_free_memory_is_refused_before_it_is_allocated(tmp_path, little_memory, data, message):
    text = refused(tmp_path, data(tmp_path), message)
    assert "more than half the free memory" in text


def test_text_batches_beyond_the_free_memory_are_refused_before_training(tmp_path, little_memory):
    splits = build.splits(load(experiment(tmp_path, text(tmp_path, block_size=8, steps_per_epoch=100_000))), CPU)
    with pytest.raises(DlxError, match="data.steps_per_epoch=100000 batches of train.batch_size=64"):
        splits.batches("train", 64, shuffle=True)


def test_a_text_of_one_character_is_refused(tmp_path):
    refused(tmp_path, text(tmp_path, content="a" * 5000, block_size=8), "one character ('a') repeated")


# --- the downloaded sets' files, damaged ---------------------------------------------------------------------
def truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def test_a_class_count_over_the_limit_is_refused_naming_it(tmp_path, monkeypatch):
    monkeypatch.setattr(checks, "MAX_CLASSES", 10)
    data = table(rows(40, z=lambda i: str(i)), target="z")(tmp_path) | {"task": "classification"}
    refused(tmp_path, data, "40 classes, but dlx allows at most 10")


CIFAR_DAMAGED = {  # a batch a CIFAR reader must refuse, each in its own words
    "cifar-float-pixels": {"data": np.zeros((4, 3072), np.float32), "labels": [0, 1, 2, 3]},
    "cifar-1000-wide": {"data": np.zeros((4, 1000), np.uint8), "labels": [0, 1, 2, 3]},
    "cifar-flat-pixels": {"data": np.zeros(3072, np.uint8), "labels": [0]},
    "cifar-two-labels": {"data": np.zeros((4, 3072), np.uint8), "labels": [0, 1]},
    "cifar-text-labels": {"data": np.zeros((4, 3072), np.uint8), "labels": ["a", "b", "c", "d"]},
    "cifar-one-label": {"data": np.zeros((4, 3072), np.uint8), "labels": 3},
}


def cifar_batch(root: Path, batch: dict) -> None:
    (root / "cifar-10-batches-py/data_batch_3").write_bytes(pickle.dumps(batch))


def write_svhn_like(root: Path, pixels: np.ndarray) -> Path:
    for split in ("train", "test"):
        scipy.io.savemat(root / tv.SVHN.split_list[split][1], {"X": pixels, "y": np.ones((4, 1))})
    return root


@pytest.mark.parametrize(("name", "damage", "message"), [
    ("mnist", lambda root: truncate(root / "MNIST/raw/train-images-idx3-ubyte", 100), "a truncated or damaged file"),
    ("mnist", lambda root: truncate(root / "MNIST/raw/t10k-labels-idx1-ubyte", 3), "not an IDX file"),
    ("cifar10", lambda root: truncate(root / "cifar-10-batches-py/data_batch_1", 50), "not a readable CIFAR batch"),
    ("cifar10", lambda root: (root / "cifar-10-batches-py/data_batch_2").write_bytes(pickle.dumps({"data": [1, 2]})),
     "not a CIFAR batch"),
    *[("cifar10", lambda root, batch=batch: cifar_batch(root, batch), "not a CIFAR batch of 32x32 colour images")
      for batch in CIFAR_DAMAGED.values()],
    ("svhn", lambda root: write_svhn_like(root, np.zeros((32, 32, 4), np.uint8)), "not (32, 32, 3, N)"),
    ("svhn", lambda root: write_svhn_like(root, np.zeros((8, 8, 3, 4), np.uint8)), "not (32, 32, 3, N)"),
    ("svhn", lambda root: (root / tv.SVHN.split_list["train"][1]).write_bytes(b"MATLAB" * 50), "not an SVHN .mat file"),
], ids=["mnist-images-truncated", "mnist-labels-truncated", "cifar-truncated", "cifar-no-labels", *CIFAR_DAMAGED,
        "svhn-3d", "svhn-8x8", "svhn-garbage"])
def test_a_damaged_file_of_a_downloaded_set_is_refused(tmp_path, name, damage, message):
    root = {"mnist": lambda: write_mnist_like(tmp_path, tv.MNIST), "cifar10": lambda: write_cifar(tmp_path, tv.CIFAR10),
            "svhn": lambda: write_svhn(tmp_path)}[name]()
    damage(root)
    refused(tmp_path, {"name": name, "root": str(root)}, message)


# --- end to end ----------------------------------------------------------------------------------------------
CLI_CASES = {
    "pt-pickle": (DAMAGED["pt: a pickle"][0], [], "holds Python objects besides tensors"),
    "csv-nan": (DAMAGED["csv: NaN feature"][0], [], "line 5, column 'a'"),
    "csv-pipe": (DAMAGED["csv: a pipe"][0], [], "not a regular file"),
    "one-class": (DAMAGED["npz: one class"][0], [], "holds only the class"),
    "labels-2e9": (DAMAGED["npz: labels of 2e9"][0], [], "classes"),
    "steps_per_epoch": (lambda tmp: text(tmp), ["--set", "data.steps_per_epoch=1000000000000"], "data.steps_per_epoch"),
}


@pytest.mark.parametrize("case", CLI_CASES)
def test_dlx_train_on_damaged_data_exits_2_with_one_line_and_no_run(tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    write, args, message = CLI_CASES[case]
    result = CliRunner().invoke(app, ["train", str(experiment(tmp_path, write(tmp_path))), *args])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr.replace("\n", " ") and "weights_only" not in result.stderr
    assert not (tmp_path / "runs").exists()
