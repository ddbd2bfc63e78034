"""`dlx explain` on runs it cannot explain (language models), with methods that cannot explain a sequence classifier
and on rows that are not in the split: one line and exit code 2, never a traceback, nothing written."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from dlx.cli import app
from tests.conftest import EXPERIMENTS

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, one_thread) -> dict[str, Path]:
    """A recurrent sequence classifier (bitpattern_rnn) and a character LSTM, one short epoch each."""
    from dlx.config import load, validate
    from dlx.train import loop

    root = tmp_path_factory.mktemp("explain-inputs")
    (root / "t.txt").write_text("the cat sat on the mat.\n" * 40)
    quiet = {"quiet": True, "console": Console(file=io.StringIO())}
    sequence, _ = loop.start(load(EXPERIMENTS / "bitpattern_rnn.yaml", ["train.epochs=1", "train.device=cpu",
                                                                        "name=sequence"]), root / "runs", **quiet)
    language, _ = loop.start(validate({
        "name": "language", "data": {"name": "text", "path": str(root / "t.txt"), "block_size": 8,
                                     "steps_per_epoch": 2, "eval_windows": 4, "split": [0.8, 0.1, 0.1]},
        "model": {"name": "char_lstm", "hidden": 8, "layers": 1},
        "train": {"epochs": 1, "batch_size": 4, "device": "cpu"}}), root / "runs", **quiet)
    return {"sequence": sequence.path, "language": language.path}


@pytest.mark.parametrize("run, args, message", [
    *[("sequence", ["-m", method, "--index", "0"], "but this model takes sequences of shape (16, 1)")
      for method in ("gradcam", "lime", "classviz", "filters")],
    ("sequence", ["-m", "attention", "--index", "0"], "needs a model with attention"),
    ("sequence", ["-m", "saliency", "--index", "-1"], "split has"),
    ("sequence", ["-m", "saliency", "--index", "0", "--step", "2"], "answers once per sample"),
    ("language", ["--list-layers"], "explains classifiers, and this run's task is language"),
    ("language", ["-m", "saliency", "--index", "0"], "explains classifiers, and this run's task is language"),
])
def test_runs_explain_cannot_take_are_refused_in_one_line(runs, tmp_path, run, args, message):
    result = CliRunner().invoke(app, ["explain", str(runs[run]), *args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
