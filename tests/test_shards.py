"""WebDataset-style tar shards: brace expansion, `dlx data shard` writing them from an image folder, and the
`shards` dataset training exactly as the streamed folder they came from."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile

import pytest
import torch
from typer.testing import CliRunner

from dlx.cli import app
from dlx.config import load
from dlx.data.shards import expand, shards
from dlx.errors import DlxError
from dlx.train import loop
from tests.conftest import ROOT
from tests.test_stream import experiment, write_colours

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(("pattern", "expected"), [
    ("a.tar", ["a.tar"]),
    ("s/train-{000..002}.tar", ["s/train-000.tar", "s/train-001.tar", "s/train-002.tar"]),
    ("{train,extra}-{8..10}.tar", ["train-8.tar", "train-9.tar", "train-10.tar", "extra-8.tar", "extra-9.tar",
                                   "extra-10.tar"]),
])
def test_brace_expansion_names_the_shards_in_order(pattern, expected):
    assert expand(pattern) == expected


def test_a_backward_or_absurd_range_is_one_line():
    for pattern in ("x-{5..1}.tar", "x-{0..99999999}.tar"):
        with pytest.raises(DlxError, match="names no shards or more than"):
            expand(pattern)


@pytest.fixture
def sharded(tmp_path):
    folder = write_colours(tmp_path / "images", 90)
    result = CliRunner().invoke(app, ["data", "shard", str(folder), "--out", str(tmp_path / "shards"), "--per-shard", "20"])
    assert result.exit_code == 0, result.output
    assert 'data.path: "' + str(tmp_path / "shards") + '/train-{000000..000004}.tar"' in result.output
    return folder, tmp_path / "shards"


def test_shards_train_exactly_as_the_streamed_folder_they_were_written_from(tmp_path, sharded):
    folder, out = sharded
    exp = experiment(tmp_path, folder, epochs=2)
    pattern = str(out / "train-{000000..000004}.tar")
    streamed = loop.start(load(exp, ["data.stream=true", "name=folder"]), tmp_path / "runs", quiet=True)[1]
    from_shards = loop.start(load(exp, ["data.name=shards", f"data.path={pattern}", "name=shards"]),
                             tmp_path / "runs", quiet=True)[1]
    assert from_shards["metrics"] == streamed["metrics"]
    assert shards(path=pattern, size=8).class_names == ("c0", "c1", "c2")


def test_damaged_or_missing_shards_are_one_line_naming_them(tmp_path, sharded):
    _, out = sharded
    with pytest.raises(DlxError, match=r"train-000005\.tar and 4 more not found"):
        shards(path=str(out / "train-{000005..000009}.tar"))
    lone = tmp_path / "lone.tar"
    with tarfile.open(lone, "w") as tar:
        info = tarfile.TarInfo("0001.png")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    with pytest.raises(DlxError, match=r"the sample '0001' has an image but no \.cls file"):
        shards(path=str(lone))
    (tmp_path / "bad.tar").write_bytes(b"no tar at all" * 100)
    with pytest.raises(DlxError, match="cannot be read as a tar shard"):
        shards(path=str(tmp_path / "bad.tar"))


def test_each_rank_reads_the_examples_of_its_own_shards_and_together_the_global_batch(tmp_path, sharded):
    from dlx import build
    from dlx.data.stream import StreamBatches

    _, out = sharded
    exp = experiment(tmp_path, out, epochs=1)
    splits = build.splits(load(exp, ["data.name=shards", f"data.path={out}/train-{{000000..000004}}.tar"]),
                          torch.device("cpu"))
    x, y = splits["train"]
    read = {}
    for rank in (0, 1):
        batches = StreamBatches(x, y, 16, shuffle=True, world=(rank, 2))
        read[rank] = [[int(x.indices[p]) for p in part] for part in batches._parts(
            torch.randperm(len(x), generator=torch.Generator().manual_seed(5)).split(16))]
    shard_of = x.examples.shard_of
    assert {shard_of[i] for part in read[0] for i in part} == {0, 2, 4}
    assert {shard_of[i] for part in read[1] for i in part} == {1, 3}
    whole = torch.randperm(len(x), generator=torch.Generator().manual_seed(5)).split(16)
    for batch, mine, theirs in zip(whole, read[0], read[1]):
        assert sorted(mine + theirs) == sorted(int(x.indices[p]) for p in batch)


def test_two_processes_on_shards_follow_the_single_process_run(tmp_path, sharded):
    _, out = sharded
    overrides = ["data.name=shards", f"data.path={out}/train-{{000000..000004}}.tar", "model.name=mlp",
                 "model.sizes=16", "train.batch_size=24", "optimizer.lr=0.02"]
    exp = experiment(tmp_path, out, epochs=3)
    loop.start(load(exp, [*overrides, "name=single"]), tmp_path / "one", quiet=True)
    done = subprocess.run([sys.executable, "-m", "dlx", "train", str(exp), *[a for o in overrides for a in ("--set", o)],
                           "--name", "ddp", "--runs-dir", str(tmp_path / "two"), "--quiet", "--nproc", "2"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    history, expected = ([json.loads(line) for line in (tmp_path / d / n / "metrics.jsonl").read_text().splitlines()]
                         for d, n in (("two", "ddp"), ("one", "single")))
    assert [h["val/loss"] for h in history] == pytest.approx([h["val/loss"] for h in expected], rel=1e-4)
