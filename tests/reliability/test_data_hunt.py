"""An outside tester's hunt on the data paths, through `dlx train` and `dlx data`: image folders, streamed folders and
tables, WebDataset-style shards and their brace patterns, the downloaded sets' readers. Whatever a user can do wrong
ends in one line on stderr and exit code 2 (no traceback, no hang), before any run folder is made; what can train,
trains."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from dlx.cli import app

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
