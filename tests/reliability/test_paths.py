"""Names and output paths cannot escape their folder: run and study names are plain names (no ../, no absolute
paths), `dlx runs rm` deletes no folder through a symbolic link, and a link planted in a run folder is replaced,
never written through."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from dlx.cli import app
from dlx.config import load
from dlx.train import loop
from tests.conftest import EXPERIMENTS, TINY_MLP

DIGITS = str(EXPERIMENTS / "digits_cnn.yaml")
ESCAPES = ["../outside", "/tmp/absolute", "a/../../b", "..", ".", "sub/run", "~/run", "run\\..\\..\\x", "-rf"]


def dlx(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_error_line(result) -> str:
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("paths")
    config = load(DIGITS, [*TINY_MLP, "train.epochs=1", "name=trained"])
    return loop.start(config, root / "runs", quiet=True, console=Console(file=io.StringIO()))[0].path


@pytest.mark.parametrize("name", ESCAPES)
@pytest.mark.parametrize("command", ["train", "schedule", "lr-find", "sweep"])
def test_a_name_that_is_a_path_is_refused_before_anything_is_written(tmp_path, monkeypatch, command, name):
    work = tmp_path / "work"  # the current folder; a name escaping it would write into tmp_path
    work.mkdir()
    monkeypatch.chdir(work)
    args = {"train": ["train", DIGITS, "--name", name, "--runs-dir", work / "runs"],
            "schedule": ["schedule", DIGITS, "--set", f"name={name}"],
            "lr-find": ["lr-find", DIGITS, "--set", f"name={name}", "--steps", "10"],
            "sweep": ["sweep", EXPERIMENTS / "digits_mlp_sweep.yaml", "--study", name, "--runs-dir", work / "runs",
                      "--trials", "1"]}[command]
    one_error_line(dlx(*args))
    assert list(tmp_path.iterdir()) == [work] and list(work.iterdir()) == []


def test_runs_rm_never_deletes_through_a_symbolic_link(trained, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(trained, target_is_directory=True)
    assert "symbolic link" in one_error_line(dlx("runs", "rm", link, "--yes"))
    assert (trained / "config.yaml").is_file() and link.is_symlink()


def test_runs_rm_deletes_a_run_but_not_what_a_link_inside_points_to(trained, tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    run = shutil.copytree(trained, tmp_path / "copy", symlinks=True)
    (run / "escape").symlink_to(precious, target_is_directory=True)
    assert dlx("runs", "rm", run, "--yes").exit_code == 0
    assert not run.exists() and (precious / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("folder", ["/", "~", ".."])
def test_runs_rm_refuses_folders_that_are_not_runs(tmp_path, monkeypatch, folder):
    monkeypatch.chdir(tmp_path)
    one_error_line(dlx("runs", "rm", Path(folder).expanduser(), "--yes"))


def test_a_link_planted_in_a_run_folder_is_replaced_not_written_through(trained, tmp_path):
    run = shutil.copytree(trained, tmp_path / "planted", symlinks=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for name in ("confusion_matrix-test.png", "evaluation.json"):
        (run / name).unlink(missing_ok=True)
        (run / name).symlink_to(victim)
    assert dlx("evaluate", run).exit_code == 0
    assert victim.read_text() == "precious"
    assert not (run / "confusion_matrix-test.png").is_symlink() and not (run / "evaluation.json").is_symlink()


def test_explain_writes_no_file_through_a_link_planted_in_the_run_folder(tmp_path):
    from PIL import Image

    run = loop.start(load(DIGITS, ["model.width=4", "model.hidden=16", "train.epochs=1", "train.device=cpu",
                                   "name=cnn"]), tmp_path / "runs", quiet=True, console=Console(file=io.StringIO()))[0].path
    Image.new("L", (8, 8), 90).save(tmp_path / "digit.png")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (run / "explanations").symlink_to(elsewhere, target_is_directory=True)
    assert "a symbolic link" in one_error_line(dlx("explain", run, "-m", "saliency", "--input", tmp_path / "digit.png"))
    (run / "explanations").unlink()
    (run / "explanations" / "digit").mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (run / "explanations" / "digit" / "saliency.npy").symlink_to(victim)
    assert dlx("explain", run, "-m", "saliency", "--input", tmp_path / "digit.png").exit_code == 0
    assert victim.read_text() == "precious" and list(elsewhere.iterdir()) == []
    assert not (run / "explanations" / "digit" / "saliency.npy").is_symlink()
