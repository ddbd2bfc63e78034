"""Image folders streamed from disk (data.stream): the batches of the in-memory path, a folder beyond the memory
limit trained to the accuracy of one that fits, and exact resumption."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlx import build
from dlx.config import load
from dlx.data import checks
from dlx.data.stream import StreamSplits
from dlx.train import loop
from tests.conftest import ROOT
from tests.reliability.procs import assert_same_run, assert_valid_checkpoints, kill_after, start

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")


def write_colours(root: Path, n: int, side: int = 6, seed: int = 0) -> Path:
    """Three classes told apart by their dominant colour, in noise: easy to learn, never constant."""
    rng = np.random.default_rng(seed)
    for c in range(3):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = rng.integers(0, 120, (side, side, 3))
        pixels[..., i % 3] += 100
        Image.fromarray(pixels.astype(np.uint8)).save(root / f"c{i % 3}" / f"{i:05d}.png")
    return root


def experiment(tmp: Path, folder: Path, size: int = 8, **train) -> Path:
    settings = {"epochs": 3, "batch_size": 32, "device": "cpu", "threads": 1, "checkpoint_seconds": 0, **train}
    path = tmp / "exp.yaml"
    path.write_text(json.dumps({"data": {"name": "image_folder", "path": str(folder), "size": size},
                                "model": {"name": "cnn", "width": 4, "hidden": 16},
                                "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9}, "train": settings,
                                "eval": {"metrics": ["accuracy"]}}))
    return path


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    return write_colours(tmp_path_factory.mktemp("colours") / "images", 150)


def test_streamed_splits_hold_the_in_memory_splits_examples_and_batches(tmp_path, colours):
    exp = experiment(tmp_path, colours)
    memory, streamed = build.splits(load(exp), CPU), build.splits(load(exp, ["data.stream=true"]), CPU)
    assert isinstance(streamed, StreamSplits)
    torch.testing.assert_close(streamed.standardizer.mean, memory.standardizer.mean)
    torch.testing.assert_close(streamed.standardizer.std, memory.standardizer.std)
    for split in ("train", "val", "test"):
        torch.testing.assert_close(streamed[split][0][:], memory[split][0])
        assert torch.equal(streamed[split][1], memory[split][1])
    order = torch.Generator().manual_seed(3).get_state()
    epoch = [torch.Generator().set_state(order) for _ in range(3)]
    want = list(memory.batches("train", 32, shuffle=True).epoch(epoch[0]))
    got = list(streamed.batches("train", 32, shuffle=True).epoch(epoch[1]))
    later = list(streamed.batches("train", 32, shuffle=True).epoch(epoch[2], start=2))  # a resumed epoch's rest
    assert len(got) == len(want) and len(later) == len(want) - 2
    for (gx, gy), (wx, wy) in zip(got, want):
        torch.testing.assert_close(gx, wx)
        assert torch.equal(gy, wy)
    for (lx, _), (gx, _) in zip(later, got[2:]):
        assert torch.equal(lx, gx)


def test_a_folder_that_does_not_fit_streams_with_a_note(tmp_path, colours, monkeypatch, capsys):
    monkeypatch.setattr(checks, "free_memory", lambda: 2**20)  # 1 MB free
    splits = build.splits(load(experiment(tmp_path, colours, size=64)), CPU)
    assert isinstance(splits, StreamSplits)
    note = capsys.readouterr().err
    assert "150 images at 64x64 as uint8 pixels would take 0.0 GB" in note and "streaming from disk" in note


def test_a_folder_beyond_the_memory_limit_trains_streamed_as_well_as_a_subset_in_memory(tmp_path):
    """float32 at 128x128: 1,800 images take 354 MB (as uint8 pixels 88 MB, above half of what is left); the process
    may grow by 150 MB (RLIMIT_AS)."""
    big = write_colours(tmp_path / "big", 1800, seed=1)
    small = write_colours(tmp_path / "small", 300, seed=2)
    common = ["--set", "model.name=mlp", "--set", "model.sizes=8", "--set", "train.epochs=2", "--set", "data.size=128",
              "--set", "train.eval_batch_size=128",
              "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    exp = experiment(tmp_path, big)
    limited = subprocess.run([sys.executable, "-m", "tests.limited_memory", "150", "354", "train", str(exp), "--name",
                              "streamed", *common], cwd=ROOT, capture_output=True, text=True, timeout=600,
                             env={**os.environ, "MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "131072"})
    assert limited.returncode == 0, limited.stdout[-2000:] + limited.stderr[-2000:]
    assert "the limit holds" in limited.stdout and "streaming from disk" in limited.stderr
    in_memory = subprocess.run([sys.executable, "-m", "dlx", "train", str(exp), "--set", f"data.path={small}",
                                "--name", "subset", *common], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert in_memory.returncode == 0, in_memory.stderr[-2000:]
    assert "streaming" not in in_memory.stderr
    accuracy = {name: json.loads((tmp_path / "runs" / name / "summary.json").read_text())["metrics"]["test"]["accuracy"]
                for name in ("streamed", "subset")}
    assert accuracy["subset"] >= 0.9 and accuracy["streamed"] >= accuracy["subset"] - 0.03, accuracy


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "stopped-mid-epoch"])
def test_a_streamed_run_killed_or_stopped_resumes_exactly(tmp_path, colours, signum):
    """Its DataLoader's workers must not keep the run's lock after a kill -9; a stop saves in the middle of an
    epoch, which the resumed run reads on from that batch."""
    exp = experiment(tmp_path, colours, epochs=30, batch_size=16)  # long enough to be killed under load
    overrides = ["data.stream=true", "data.augment.shift=1", "model.dropout=0.2"]
    reference = loop.start(load(exp, [*overrides, "name=reference"]), tmp_path / "reference", quiet=True)[0].path
    run = tmp_path / "runs" / "killed"
    sets = [a for o in overrides for a in ("--set", o)]
    proc = start(["train", str(exp), *sets, "--name", "killed", "--runs-dir", str(run.parent), "--quiet"],
                 tmp_path / "log")
    assert kill_after(proc, run, 3, 0.1, signum) != 0
    assert_valid_checkpoints(run)
    loop.resume(run, quiet=True)
    assert_same_run(run, reference)


@pytest.mark.parametrize("target", ["kind", "weight"], ids=["classes", "regression"])
def test_a_streamed_csv_holds_the_in_memory_tables_features_and_targets(tmp_path, target):
    from tests.test_datasets import write_csv

    rows = write_csv(tmp_path / "fruit.csv").read_text().splitlines()
    (tmp_path / "more.csv").write_text("\n".join([rows[0], *rows[1:] * 4]) + "\n")  # enough rows for three splits
    exp = tmp_path / "csv.yaml"
    exp.write_text(json.dumps({"data": {"name": "csv", "path": str(tmp_path / "more.csv"), "target": target},
                               "model": {"name": "mlp", "sizes": "4"}, "train": {"device": "cpu"}}))
    memory, streamed = build.splits(load(exp), CPU), build.splits(load(exp, ["data.stream=true"]), CPU)
    assert isinstance(streamed, StreamSplits) and streamed.spec == memory.spec
    torch.testing.assert_close(streamed.standardizer.mean, memory.standardizer.mean)
    torch.testing.assert_close(streamed.standardizer.std, memory.standardizer.std)
    for split in ("train", "val", "test"):
        torch.testing.assert_close(streamed[split][0][:], memory[split][0])
        assert torch.equal(streamed[split][1], memory[split][1])


def test_a_csv_that_does_not_fit_streams_with_a_note(tmp_path, monkeypatch, capsys):
    from dlx.data.files import csv
    from tests.test_datasets import write_csv

    monkeypatch.setattr(checks, "free_memory", lambda: 100)
    data = csv(path=str(write_csv(tmp_path / "fruit.csv")), target="kind")
    assert len(data.y) == 6 and data.examples.in_shape == (5,)  # height, colour one-hot (3 words), weight
    assert "fruit.csv's rows would take" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "message"), [
    (b"a,b\n1,2\n3\n", "line 3 has 1 fields, the header has 2"),
    (b"a,b\n1,\n", "line 2 has an empty cell in column 'b'"),
    (b"a,b\n1,nan\n", "line 2, column 'b': 'nan' is not a finite 32-bit number"),
    (b"a,c\n1,2\n", "data.target: no column 'b'"),
    (b"a,b\n1,\xe92\n", "not UTF-8 text (byte 0xe9 on line 2)"),
    (b'a,b\n1,"two\nlines"\n', "a quoted field may not span lines"),
    (b"a,b\n", "needs a header row and at least one row of data"),
], ids=["fields", "empty-cell", "nan", "no-target", "latin1", "multi-line", "no-rows"])
def test_a_damaged_streamed_csv_is_one_line_naming_where(tmp_path, content, message):
    from dlx.data.files import csv
    from dlx.errors import DlxError

    (tmp_path / "t.csv").write_bytes(content)
    with pytest.raises(DlxError, match=re.escape(message)) as error:
        csv(path=str(tmp_path / "t.csv"), target="b", stream=True)
    assert "\n" not in str(error.value)


def test_a_damaged_image_met_while_streaming_stops_training_in_one_line_naming_it(tmp_path):
    from typer.testing import CliRunner

    from dlx.cli import app
    from tests.reliability.procs import error_line

    folder = write_colours(tmp_path / "images", 60)
    (folder / "c1" / "00004.png").write_bytes(b"not a png")
    result = CliRunner().invoke(app, ["train", str(experiment(tmp_path, folder)), "--set", "data.stream=true",
                                      "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    assert error_line(result) == (f"error: data.path: {folder}/c1/00004.png: cannot read it as an image (cannot "
                                  f"identify image file '{folder}/c1/00004.png')")


def test_a_csv_changed_while_it_streams_is_one_line(tmp_path):
    from dlx.data.files import csv
    from dlx.errors import DlxError

    table = tmp_path / "t.csv"
    table.write_text("a,colour,b\n1,red,x\n2,blue,y\n")
    data = csv(path=str(table), target="b", stream=True)
    assert data.examples.read(1).tolist() == [2.0, 1.0, 0.0]  # blue before red
    table.write_text("a,colour,b\n1,red,x\n2,green,y\n")
    with pytest.raises(DlxError, match=r"t\.csv changed while it was read \(data row 2: 'green' is not what"):
        data.examples.read(1)


def test_auto_threads_leave_the_reading_workers_their_cores(tmp_path, colours, monkeypatch):
    """The main process's threads would share the workers' cores (an epoch of 28x28 images took twice as long), so
    auto counts the workers as busy; data in memory keeps every free core."""
    from dlx import threads
    from dlx.data import stream

    monkeypatch.setattr(threads, "free_cores", lambda: 4)
    monkeypatch.setattr(stream, "workers", lambda: 3)
    monkeypatch.setattr(threads, "fastest", lambda probe, most: threads.Choice(most, f"auto: timed up to {most}"))
    exp = experiment(tmp_path, colours)
    count = torch.get_num_threads()
    try:
        for overrides, expected in [(["data.stream=true"], 1), ([], 4)]:
            data = build.splits(load(exp, overrides), CPU)
            batch = threads.training_batch(data, 8)
            assert threads.choose("auto", lambda: None, threads.reading_workers(data, batch)).threads == expected
    finally:
        torch.set_num_threads(count)
