"""Files dlx reads that may hurt: checkpoints (truncated, random bytes, empty, a pickle that would run code, one of
another run) through `dlx explain` and `dlx generate`; images for explain (corrupt, decompression bombs, huge,
odd channels); absurd generate requests. Each is refused in one line with exit 2, or handled; nothing runs."""
from __future__ import annotations

import io
import os
import pickle
import random
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console
from typer.testing import CliRunner

from dlx.cli import app
from dlx.config import load, validate
from dlx.train import loop
from tests.conftest import EXPERIMENTS

pytestmark = pytest.mark.usefixtures("one_thread")
TEXT = "ROMEO: the cat sat on the mat.\nJULIET: the dog sat on the log.\n" * 40


def dlx(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def refused(result, message: str = "") -> str:
    """Exit 2 and one line on stderr holding `message` (Click's own usage errors draw a box: no traceback)."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    assert message in result.stderr.replace("\n", " "), result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    quiet = {"quiet": True, "console": Console(file=io.StringIO())}
    found = {
        name: loop.start(load(EXPERIMENTS / "digits_cnn.yaml", [*overrides, "train.epochs=1", "train.device=cpu",
                                                                   f"name={name}"]), root, **quiet)[0].path
        for name, overrides in (("cnn", ["model.width=4", "model.hidden=16"]),
                                ("iris", ["data.name=iris", "model.name=mlp", "model.sizes=8", "eval.metrics=[accuracy]"]))
    }
    (root / "t.txt").write_text(TEXT)
    for name, width in (("lm", 16), ("wider-lm", 32)):
        config = validate({
            "name": name, "data": {"name": "text", "path": str(root / "t.txt"), "block_size": 16, "steps_per_epoch": 5,
                                   "eval_windows": 4, "split": [0.8, 0.1, 0.1]},
            "model": {"name": "gpt", "width": width, "heads": 2, "layers": 1},
            "train": {"epochs": 1, "batch_size": 8, "device": "cpu"}})
        found[name] = loop.start(config, root, **quiet)[0].path
    return found


class RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


BAD_CHECKPOINTS = {
    "truncated": lambda good, other: good[: len(good) // 2],
    "random bytes": lambda good, other: random.Random(0).randbytes(4096),
    "empty": lambda good, other: b"",
    "code-running pickle": lambda good, other: pickle.dumps(RunsCode()),
    "another run's": lambda good, other: other,
}
COMMANDS = {  # the run to damage, the run whose checkpoint is foreign to it, the command after the run folder
    "explain": ("cnn", "iris", ["-m", "saliency", "--index", "0"]),
    "explain-table": ("iris", "cnn", ["-m", "saliency", "--index", "0"]),
    "generate": ("lm", "wider-lm", ["--max-new-tokens", "5"]),
    "generate-not-text": ("lm", "cnn", ["--max-new-tokens", "5"]),
}


CHECKPOINT_CASES = [(c, d) for c in COMMANDS for d in BAD_CHECKPOINTS if c != "generate-not-text" or d == "another run's"]


@pytest.mark.parametrize(("command", "damage"), CHECKPOINT_CASES, ids=[f"{c}-{d}" for c, d in CHECKPOINT_CASES])
def test_a_bad_checkpoint_is_refused_in_one_line_and_runs_nothing(runs, tmp_path, monkeypatch, command, damage):
    monkeypatch.chdir(tmp_path)
    run_name, other, args = COMMANDS[command]
    run = shutil.copytree(runs[run_name], tmp_path / run_name)
    best = run / "checkpoints" / "best.pt"
    best.write_bytes(BAD_CHECKPOINTS[damage](best.read_bytes(), (runs[other] / "checkpoints" / "best.pt").read_bytes()))
    result = dlx(command.split("-")[0], run, *args, *(["--out", tmp_path / "out"] if command.startswith("e") else []))
    line = refused(result)
    assert line.startswith("error: ") and line.count("\n") == 1
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "out").exists()


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header for a grey image of this size, without its pixels: what a decompression bomb shows first."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def encoded(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return buffer.getvalue()


GREY = Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8), dtype=np.uint8))


def flipped(kind: str, seed: int) -> bytes:
    """A valid image with a few random bytes changed past the signature."""
    rng, data = random.Random(seed), bytearray(encoded(GREY, kind))
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(8, len(data))] = rng.randrange(256)
    return bytes(data)


REFUSED_IMAGES = {
    "bomb 400 Mpx": (lambda: png_claiming(20_000, 20_000), "exceeds limit"),
    "over the limit 100 Mpx": (lambda: png_claiming(10_000, 10_000), "exceeds limit"),
    "truncated": (lambda: encoded(GREY, "PNG")[:60], "cannot read it as an image"),
    "text": (lambda: b"not an image\n", "cannot read it as an image"),
    "colour for a grey model": (lambda: encoded(Image.new("RGB", (8, 8), (200, 10, 10)), "PNG"), "a colour image"),
}


@pytest.mark.parametrize("kind", REFUSED_IMAGES)
def test_a_hostile_or_unfit_image_is_refused_in_one_line(runs, tmp_path, kind):
    make, message = REFUSED_IMAGES[kind]
    (tmp_path / "input.png").write_bytes(make())
    refused(dlx("explain", runs["cnn"], "-m", "saliency", "--input", tmp_path / "input.png", "--out", tmp_path / "out"),
            message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("seed", range(16))
def test_a_corrupted_image_is_refused_or_explained_never_a_traceback(runs, tmp_path, seed):
    path = tmp_path / f"input.{'png' if seed % 2 else 'jpg'}"
    path.write_bytes(flipped("PNG" if seed % 2 else "JPEG", seed))
    result = dlx("explain", runs["cnn"], "-m", "saliency", "--input", path, "--out", tmp_path / "out")
    if result.exit_code != 0:  # a flipped byte may land where the decoder does not look
        refused(result, "cannot read it as an image")


@pytest.mark.parametrize("image", [
    Image.new("L", (2000, 1500), 90), Image.new("RGBA", (8, 8)), Image.new("I;16", (8, 8)), Image.new("1", (1, 1)),
    Image.new("P", (8, 8)), Image.new("LA", (30, 30)),
], ids=["huge-downscaled", "rgba-grey", "16-bit", "one-pixel", "palette-grey", "grey-alpha"])
def test_large_and_odd_images_are_downscaled_to_the_model_input(runs, tmp_path, image):
    image.save(tmp_path / "input.png")
    result = dlx("explain", runs["cnn"], "-m", "saliency", "--input", tmp_path / "input.png", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "out" / "input" / "saliency_rescaled.npy").shape[-2:] == (8, 8)


@pytest.mark.parametrize(("args", "message"), [
    (["--max-new-tokens", "0"], "--max-new-tokens"),
    (["--max-new-tokens", "-5"], "--max-new-tokens"),
    (["--prompt", ""], "at least one character"),
    (["--prompt", "Zé€\x00"], "not in the model's vocabulary"),
    (["--top-k", "0"], "--top-k"),
    (["--top-p", "1.5"], "--top-p"),
    (["--top-p", "nan"], "--top-p"),
    (["--temperature", "nan"], "--temperature"),
    (["--temperature", "-1"], "--temperature"),
    (["--beam-width", "0", "--strategy", "beam"], "--beam-width"),
    (["--num-samples", "0"], "--num-samples"),
    (["--seed", str(2**70)], "--seed"),
    (["--strategy", "best"], "--strategy"),
    (["--checkpoint", "middle"], "--checkpoint"),
    (["--prompt-file", "/"], "--prompt-file"),
    (["--out", "no/such/folder/x.txt", "--max-new-tokens", "3"], "No such file or directory"),
])
def test_an_absurd_generate_request_is_refused(runs, args, message):
    refused(dlx("generate", runs["lm"], *args), message)


@pytest.mark.parametrize("args", [
    ["--temperature", "1e-300"], ["--temperature", "1e308"], ["--temperature", "inf"], ["--top-k", "1000000"],
    ["--strategy", "beam", "--beam-width", "100000"], ["--prompt", "the " * 5000], ["--top-p", "1e-9"],
], ids=["tiny-temperature", "huge-temperature", "inf-temperature", "huge-top-k", "huge-beam", "long-prompt",
        "tiny-top-p"])
def test_extreme_but_meaningful_generate_options_work(runs, args):
    result = dlx("generate", runs["lm"], "--max-new-tokens", "4", "--seed", "1", "--no-stream", *args)
    assert result.exit_code == 0, result.output
    assert set(result.stdout.strip()) <= set(TEXT)
