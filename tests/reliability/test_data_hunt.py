"""An outside tester's hunt on the data paths, through `dlx train` and `dlx data`: image folders, streamed folders and
tables, WebDataset-style shards and their brace patterns, the downloaded sets' readers. Whatever a user can do wrong
ends in one line on stderr and exit code 2 (no traceback, no hang), before any run folder is made; what can train,
trains."""
from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import yaml
from PIL import Image
from typer.testing import CliRunner

from dlx.cli import app
from dlx.data.shards import expand

pytestmark = pytest.mark.usefixtures("one_thread")


def dlx(tmp_path: Path, monkeypatch, *args: str):
    monkeypatch.chdir(tmp_path)
    return CliRunner().invoke(app, [str(a) for a in args])


def train(tmp_path: Path, monkeypatch, data: dict, *overrides: str):
    """`dlx train` on a small MLP over `data`, one epoch on the CPU."""
    path = tmp_path / "hunt.yaml"
    path.write_text(yaml.safe_dump({"name": "hunt", "data": data, "model": {"name": "mlp", "sizes": 8},
                                    "train": {"epochs": 1, "batch_size": 8, "device": "cpu", "threads": 1}}))
    return dlx(tmp_path, monkeypatch, "train", path, *[a for o in overrides for a in ("--set", o)])


def one_line(result, message: str, tmp_path: Path | None = None) -> str:
    """Exit 2, one `error:` line on stderr holding `message`, no traceback; with `tmp_path`, no run folder."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.stderr.startswith("error: "), result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    if tmp_path is not None:
        assert not (tmp_path / "runs").exists()
    return result.stderr


def trained(result) -> None:
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output


# --- tables streamed from CSV --------------------------------------------------------------------------------
def rows(n: int = 30, header: str = "a,b,y") -> str:
    return header + "\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(n))


def with_line(number: int, line: str) -> str:
    lines = rows().splitlines()
    lines[number - 1] = line
    return "\n".join(lines) + "\n"


def table(tmp_path: Path, text: str, **settings) -> dict:
    (tmp_path / "t.csv").write_text(text)
    return {"name": "csv", "path": str(tmp_path / "t.csv"), "target": "y", "stream": True, **settings}


@pytest.mark.parametrize(("text", "message"), [
    (rows(header="a,a,y"), "has the column 'a' twice in its header"),
    ("y\n" + "".join(f"{i % 2}\n" for i in range(30)), "has no feature columns besides 'y'"),
    (with_line(15, "1,1e39,0"), "line 15, column 'b': '1e39' is not a finite 32-bit number"),
    (with_line(15, "1,2,3,4"), "line 15 has 4 fields, the header has 3"),
    (with_line(20, '1,"2,0'), "line 20: unexpected end of data"),
], ids=["a-column-twice", "only-the-target", "beyond-float32-mid-file", "extra-field-mid-file", "open-quote-mid-file"])
def test_a_damaged_streamed_table_is_one_line(tmp_path, monkeypatch, text, message):
    """The streamed reader checks the header as the in-memory one does: a column twice was read as the first of
    the two, and a table of only its target failed with numpy's traceback."""
    one_line(train(tmp_path, monkeypatch, table(tmp_path, text)), message, tmp_path)


@pytest.mark.parametrize("overrides", [(), ("train.batch_size=1000",)], ids=["batches", "a-batch-beyond-the-split"])
def test_a_streamed_table_of_two_features_trains_and_draws_its_decision_regions(tmp_path, monkeypatch, overrides):
    """Two features make a plane: its figure read the streamed split as a tensor and failed after training."""
    trained(train(tmp_path, monkeypatch, table(tmp_path, rows()), *overrides))
    assert (tmp_path / "runs/hunt/decision_regions.png").is_file()


# --- WebDataset-style shards ---------------------------------------------------------------------------------
def png(shade: int = 9) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 6), (shade,) * 3).save(buffer, "PNG")
    return buffer.getvalue()


def shard(path: Path, extra: dict[str, bytes] | None = None, samples: int = 10) -> Path:
    """A shard of `samples` small images of classes 0 and 1, and then the members of `extra`."""
    members = {**{name: data for i in range(samples)
                  for name, data in ((f"{i:04d}.png", png(i)), (f"{i:04d}.cls", str(i % 2).encode()))}, **(extra or {})}
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def cut_at_a_header(path: Path) -> Path:
    """The shard cut just before its fifth member's header: whole members, no end marker (tarfile reads it as
    a shorter shard without a word)."""
    with tarfile.open(path) as tar:
        fifth = tar.getmembers()[4].offset
    path.write_bytes(path.read_bytes()[:fifth])
    return path


SHARDS = {  # a shard (or a pattern), and what its one line must say
    "cut-at-a-header": (lambda tmp: cut_at_a_header(shard(tmp / "s.tar")), "no tar end marker at byte"),
    "a-superscript-class": (lambda tmp: shard(tmp / "s.tar", {"0100.png": png(), "0100.cls": "²".encode()}),
                            "0100.cls holds '²', not a class index"),
    "a-class-of-10^14": (lambda tmp: shard(tmp / "s.tar", {"0100.png": png(), "0100.cls": b"99999999999999"}),
                         "0100.cls holds '99999999999999', not a class index (0..99999)"),
    "a-class-of-5000-digits": (lambda tmp: shard(tmp / "s.tar", {"0100.png": png(), "0100.cls": b"7" * 5000}),
                               "0100.cls holds '77777777777777777777', not a class index"),
    "a-class-not-utf8": (lambda tmp: shard(tmp / "s.tar", {"0100.png": png(), "0100.cls": b"\xff1"}),
                         "0100.cls holds '\ufffd1', not a class index"),
    "a-label-without-an-image": (lambda tmp: shard(tmp / "s.tar", {"0100.cls": b"1"}),
                                 "the sample '0100' has a .cls file but no image dlx reads"),
    "an-image-dlx-does-not-read": (lambda tmp: shard(tmp / "s.tar", {"0100.avif": png(), "0100.cls": b"1"}),
                                   "the sample '0100' has a .cls file but no image dlx reads"),
    "two-images-of-one-key": (lambda tmp: shard(tmp / "s.tar", {"0001.jpg": png()}), "the sample '0001' has two images"),
    "a-shard-named-twice": (lambda tmp: str(shard(tmp / "s.tar").parent / "{s,s}.tar"), "s.tar twice"),
    "classes.txt-not-utf8": (lambda tmp: ((tmp / "classes.txt").write_bytes(b"\xff\n\xfe\n"), shard(tmp / "s.tar"))[1],
                             "classes.txt cannot be read as the class names"),
    "an-empty-shard": (lambda tmp: ((tmp / "s.tar").write_bytes(b""), tmp / "s.tar")[1], "cannot be read as a tar shard"),
    "a-directory": (lambda tmp: tmp, "not found"),
    "a-range-of-10^12": (lambda tmp: "s-{0..999999999999}.tar", "names no shards or more than 1,000,000"),
    "two-ranges-of-10^6": (lambda tmp: "s-{0..999999}{0..999999}.tar", "names more than 1,000,000 shards"),
    "three-lists-of-1000": (lambda tmp: "s-" + ("{" + ",".join(map(str, range(1000))) + "}") * 3 + ".tar",
                            "names more than 1,000,000 shards"),
    "2000-braces-in-a-row": (lambda tmp: "{a,b}" * 2000, "names more than 1,000,000 shards"),
    "braces-50-deep": (lambda tmp: "{" * 50 + "a,b" + "}" * 50, "nests braces more than 10 deep"),
    "unbalanced": (lambda tmp: str(shard(tmp / "s.tar").parent / "s{.tar"), "s{.tar not found"),
}


@pytest.mark.parametrize("case", SHARDS)
def test_damaged_shards_and_absurd_patterns_are_one_line(tmp_path, monkeypatch, case):
    """Within seconds: a pattern's names are counted before any is made (two ranges of a million each were made,
    10^12 names, until memory ran out; 2000 braces in a row hit Python's recursion limit)."""
    write, message = SHARDS[case]
    one_line(train(tmp_path, monkeypatch, {"name": "shards", "path": str(write(tmp_path)), "size": 8}), message,
             tmp_path)


@pytest.mark.parametrize(("pattern", "expected"), [
    ("train-{00000{0,1},000002}.tar", ["train-000000.tar", "train-000001.tar", "train-000002.tar"]),
    ("{{a,b},c}", ["a", "b", "c"]),
    ("{a{1,2}}", ["{a1}", "{a2}"]),
    ("a{,b}c", ["ac", "abc"]),
    ("{a}{}{0..3", ["{a}{}{0..3"]),
    ("{-1..3}", ["{-1..3}"]),
], ids=["a-range-in-a-choice", "a-choice-in-a-choice", "text-around-a-choice", "an-empty-choice", "no-expansion",
        "a-negative-range-is-text"])
def test_braces_within_braces_expand_as_the_shells(pattern, expected):
    """A brace within a brace chooses within its choice: `{00000{0,1},000002}` named 000002 twice."""
    assert expand(pattern) == expected


def test_shards_with_other_members_train(tmp_path, monkeypatch):
    """WebDataset samples often carry more (a .json): those are passed over, the image and its class read."""
    shard(tmp_path / "s.tar", {"0001.json": b"{}"})
    trained(train(tmp_path, monkeypatch, {"name": "shards", "path": str(tmp_path / "s.tar"), "size": 8}))


def image_folder(root: Path, classes: tuple[str, ...] = ("cat", "dog"), n: int = 5) -> Path:
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((6, 6, 3), 40 * c + i, dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


SHARD_OUT = {  # what --out is, and what the one line says; nothing there is touched
    "a-file": (lambda out: out.write_text("keep"), "is a file"),
    "a-folder-with-a-file": (lambda out: (out.mkdir(), (out / "notes.txt").write_text("keep")),
                             "already holds files"),
    "earlier-shards": (lambda out: (out.mkdir(), [shard(out / f"train-{i:06d}.tar") for i in range(3)]),
                       "already holds files"),
}


@pytest.mark.parametrize("case", SHARD_OUT)
def test_dlx_data_shard_writes_only_into_a_new_or_empty_folder(tmp_path, monkeypatch, case):
    """Shards written over earlier ones replaced some and left the rest beside them, to be read as one set."""
    prepare, message = SHARD_OUT[case]
    out = tmp_path / "out"
    prepare(out)
    before = {p: p.read_bytes() for p in ([out] if out.is_file() else out.iterdir())}
    one_line(dlx(tmp_path, monkeypatch, "data", "shard", image_folder(tmp_path / "images"), "--out", out), message)
    assert {p: p.read_bytes() for p in ([out] if out.is_file() else out.iterdir())} == before


@pytest.mark.parametrize(("name", "message"), [
    ("a\nb", "has a line break in its name"),
    (os.fsdecode(b"\xff\xfe"), "has a name that is not UTF-8"),
], ids=["a-line-break", "not-utf8"])
def test_a_class_folder_classes_txt_cannot_hold_is_refused_before_any_shard(tmp_path, monkeypatch, name, message):
    """classes.txt holds a name a line: a line break shifted every later class's name; a name that is not UTF-8
    failed with a traceback after the shards were written."""
    folder = image_folder(tmp_path / "images", ("cat", name))
    one_line(dlx(tmp_path, monkeypatch, "data", "shard", folder, "--out", tmp_path / "out"), message)
    assert not (tmp_path / "out").exists()


# --- image folders, in memory and streamed -------------------------------------------------------------------
def folder_with(tmp_path: Path, change) -> dict:
    root = image_folder(tmp_path / "images")
    change(root)
    return {"name": "image_folder", "path": str(root), "size": 8}


def write(relative: str, content: bytes):
    return lambda root: (root / relative).write_bytes(content)


FOLDERS = {  # a change to a good folder of two classes, and what the one line must say
    "a-link-to-the-parent": (lambda root: (root / "cat/loop").symlink_to(".."), "cat/loop links to"),
    "a-link-to-itself": (lambda root: (root / "cat/self").symlink_to("."), "cat/self links to"),
    "a-link-to-the-root": (lambda root: (root / "dog/root").symlink_to("/"), "dog/root links to /, which holds"),
    "an-empty-class": (lambda root: (root / "empty").mkdir(), "Found no valid file for the classes empty"),
    "a-class-of-text-files": (lambda root: ((root / "notes").mkdir(), (root / "notes/a.txt").write_text("hi")),
                              "Found no valid file for the classes notes"),
    "a-zero-byte-png": (write("cat/zero.png", b""), "cat/zero.png: cannot read it as an image"),
    "random-bytes-as-jpeg": (write("dog/noise.jpg", bytes(range(256)) * 4), "dog/noise.jpg: cannot read it as an image"),
    "a-gif-header-named-png": (write("dog/half.png", b"GIF89a\x01\x00"), "dog/half.png: cannot read it as an image"),
}


@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "streamed"])
@pytest.mark.parametrize("case", FOLDERS)
def test_a_damaged_image_folder_is_one_line(tmp_path, monkeypatch, case, stream):
    """A link to a folder above it listed that folder's images again at every level (each 41 times), silently."""
    change, message = FOLDERS[case]
    one_line(train(tmp_path, monkeypatch, folder_with(tmp_path, change) | {"stream": stream}), message, tmp_path)


@pytest.mark.parametrize(("change", "overrides"), [
    (lambda root: (root / "cat/dogs").symlink_to("../dog"), ()),
    (lambda root: [Image.new("RGB", size).save(root / f"cat/{size[0]}.png") for size in ((1, 1), (30000, 1))], ()),
    (lambda root: Image.new("L", (6, 6), 3).save(root / "cat/grey.png"), ()),
    (lambda root: Image.new("RGB", (6, 6), (1, 2, 3)).save(root / "cat/colour.png"), ("data.channels=1",)),
    (lambda root: (root / "cat/ça t 猫 .png").write_bytes((root / "cat/0.png").read_bytes()), ("data.stream=true",)),
    (lambda root: (root / "cat").rename(root / os.fsdecode(b"\xff\xfe")), ()),
    (lambda root: (root / "cat/loop.png").symlink_to("loop.png"), ()),
    (lambda root: None, ("data.stream=true", "train.batch_size=1000")),
], ids=["a-link-to-a-sibling-class", "1x1-and-30000x1", "a-grey-image-among-colour", "a-colour-image-read-grey",
        "unicode-and-spaces", "a-class-name-not-utf8", "a-link-to-itself-named-png", "a-batch-beyond-the-split"])
def test_an_odd_but_readable_image_folder_trains(tmp_path, monkeypatch, change, overrides):
    trained(train(tmp_path, monkeypatch, folder_with(tmp_path, change), *overrides))


@pytest.mark.parametrize(("data", "message"), [
    (lambda tmp: {"path": str(tmp / "hunt.yaml")}, "Not a directory"),
    (lambda tmp: {"path": str(tmp / "nowhere")}, "does not exist"),
    (lambda tmp: {"path": str(image_folder(tmp / "images", ("cat",)))}, "holds only the class 'cat'"),
    (lambda tmp: {"path": str(image_folder(tmp / "images")), "test_path": str(image_folder(tmp / "t", ("cat", "cow")))},
     "has classes ['cat', 'cow'], but data.path has ['cat', 'dog']"),
    (lambda tmp: {"path": str(image_folder(tmp / "images", n=1)), "stream": True}, "2 examples are too few"),
], ids=["a-file", "missing", "one-class", "a-test-folder-of-other-classes", "one-image-a-class-streamed"])
def test_an_image_folder_that_cannot_train_is_one_line(tmp_path, monkeypatch, data, message):
    (tmp_path / "hunt.yaml").write_text("")
    one_line(train(tmp_path, monkeypatch, {"name": "image_folder", "size": 8, **data(tmp_path)}), message, tmp_path)


def test_a_streamed_table_of_more_classes_than_dlx_allows_is_refused(tmp_path, monkeypatch):
    """The in-memory table's limit holds for a streamed one: its classes were never counted."""
    from dlx.data import checks

    monkeypatch.setattr(checks, "MAX_CLASSES", 10)
    text = "a,y\n" + "".join(f"{i},word{i}\n" for i in range(40))
    one_line(train(tmp_path, monkeypatch, table(tmp_path, text)), "40 classes, but dlx allows at most 10", tmp_path)


# --- dlx data fetch ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "environment", "message"), [
    (["mnistt"], {}, "'mnistt' is not a dataset dlx downloads (did you mean 'mnist'"),
    ([""], {}, "'' is not a dataset dlx downloads (choose from:"),
    (["mnist", "nope"], {"DLX_DATA_MIRROR": "http://127.0.0.1:9"}, "'nope' is not a dataset"),
    (["mnist"], {"DLX_OFFLINE": "1"}, "DLX_OFFLINE is set"),
    (["tinyshakespeare", "--root", "{tmp}/hunt.yaml"], {"DLX_DATA_MIRROR": "http://127.0.0.1:9"},
     "cannot create the data dir"),
    (["tinyshakespeare", "--root", "{tmp}/data"], {"DLX_DATA_MIRROR": "notaurl"},
     "$DLX_DATA_MIRROR='notaurl' is not a URL"),
    (["tinyshakespeare", "--root", "{tmp}/data"], {"DLX_DATA_MIRROR": "http://"}, "(no host given)"),
], ids=["misspelled", "empty-name", "a-bad-name-after-a-good-one", "offline", "root-is-a-file", "mirror-not-a-url",
        "mirror-without-a-host"])
def test_dlx_data_fetch_refuses_in_one_line(tmp_path, monkeypatch, args, environment, message):
    """A mirror given without a scheme failed with urllib's ValueError traceback."""
    (tmp_path / "hunt.yaml").write_text("")
    monkeypatch.delenv("DLX_OFFLINE", raising=False)  # the suite's; nothing here reaches the network
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    one_line(dlx(tmp_path, monkeypatch, "data", "fetch", *[a.format(tmp=tmp_path) for a in args]), message)


# --- the downloaded sets' readers ----------------------------------------------------------------------------
def idx(path: Path, dims: tuple[int, ...], data: bytes = b"") -> None:
    path.write_bytes(struct.pack(f">I{len(dims)}I", 0x800 + len(dims), *dims) + data)


def svhn_train(root: Path, pixels: np.ndarray, labels: np.ndarray) -> None:
    scipy.io.savemat(root / "train_32x32.mat", {"X": pixels, "y": labels.reshape(-1, 1)})


SVHN_LABELS = (np.arange(30) % 10 + 1)
READERS = {  # a set, what is done to its files, and what the one line says
    "mnist-labels-in-the-place-of-images": (
        "mnist", lambda root: (root / "MNIST/raw/train-images-idx3-ubyte").write_bytes(
            (root / "MNIST/raw/train-labels-idx1-ubyte").read_bytes()), "not an IDX file of 3-dimensional bytes"),
    "mnist-images-in-the-place-of-labels": (
        "mnist", lambda root: (root / "MNIST/raw/t10k-labels-idx1-ubyte").write_bytes(
            (root / "MNIST/raw/t10k-images-idx3-ubyte").read_bytes()), "not an IDX file of 1-dimensional bytes"),
    "mnist-no-images": ("mnist", lambda root: idx(root / "MNIST/raw/train-images-idx3-ubyte", (0, 28, 28)),
                        "the header says the file holds no examples"),
    "mnist-no-labels": ("mnist", lambda root: idx(root / "MNIST/raw/t10k-labels-idx1-ubyte", (0,)),
                        "the header says the file holds no examples"),
    "mnist-a-label-of-200": ("mnist", lambda root: idx(root / "MNIST/raw/train-labels-idx1-ubyte", (12,), bytes([200] * 12)),
                             "holds the class index 200"),
    "cifar-a-pickle-that-runs-code": (
        "cifar10", lambda root: (root / "cifar-10-batches-py/data_batch_1").write_bytes(
            b"cposix\nsystem\n(S'touch PWNED'\ntR."), "not a CIFAR batch (it refers to posix.system)"),
    "cifar-three-class-names": (
        "cifar10", lambda root: (root / "cifar-10-batches-py/batches.meta").write_bytes(
            pickle.dumps({"label_names": ["a", "b", "c"]})), "this data names 3 classes"),
    "svhn-a-label-of-11": ("svhn", lambda root: svhn_train(root, np.zeros((32, 32, 3, 30), np.uint8),
                                                           np.r_[SVHN_LABELS[:-1], 11]), "y holds 11; its labels are 1..10"),
    "svhn-a-label-of-0": ("svhn", lambda root: svhn_train(root, np.zeros((32, 32, 3, 30), np.uint8),
                                                          np.r_[SVHN_LABELS[:-1], 0]), "y holds 0; its labels are 1..10"),
    "svhn-float-pixels": ("svhn", lambda root: svhn_train(root, np.full((32, 32, 3, 30), 0.5), SVHN_LABELS),
                          "X holds float64 values, not uint8 pixels"),
}


@pytest.mark.parametrize("case", READERS)
def test_a_damaged_file_of_a_downloaded_set_is_one_line(tmp_path, monkeypatch, case):
    """A labels file in the place of images, or a file of no examples, stopped MNIST's reader with numpy's
    ValueError; SVHN wrapped a label of 11 to the digit 1 and read float pixels unscaled, without a word."""
    from torchvision import datasets as tv

    from tests.test_datasets import write_cifar, write_mnist_like, write_svhn

    name, damage, message = READERS[case]
    root = {"mnist": lambda: write_mnist_like(tmp_path / "data", tv.MNIST),
            "cifar10": lambda: write_cifar(tmp_path / "data", tv.CIFAR10),
            "svhn": lambda: write_svhn(tmp_path / "data", 30)}[name]()
    damage(root)
    one_line(train(tmp_path, monkeypatch, {"name": name, "root": str(root), "download": False}), message, tmp_path)
    assert not (tmp_path / "PWNED").exists()


# --- paths as typed ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("data", [
    {"name": "image_folder", "path": "~nobody-here/images", "size": 8},
    {"name": "csv", "path": "~nobody-here/t.csv", "target": "y"},
    {"name": "shards", "path": "~nobody-here/s-{0..3}.tar"},
    {"name": "text", "path": "~nobody-here/t.txt"},
    {"name": "mnist", "root": "~nobody-here/data", "download": False},
], ids=["image_folder", "csv", "shards", "text", "a-data-root"])
def test_a_path_under_the_home_of_no_user_is_one_line(tmp_path, monkeypatch, data):
    """pathlib raises a bare RuntimeError for ~user when there is no such user."""
    one_line(train(tmp_path, monkeypatch, data), "~nobody-here names no home directory on this machine", tmp_path)
