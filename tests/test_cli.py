"""Every command through Typer's CliRunner, and every bad input: one line on stderr, exit code 2."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlx.cli import app
from tests.conftest import EXPERIMENTS, FAST

runner = CliRunner()


def dlx(*args: str):
    return runner.invoke(app, list(args))


def fast_args() -> list[str]:
    return [a for o in FAST for a in ("--set", o)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("cli") / "runs"
    result = dlx("train", str(EXPERIMENTS / "digits_cnn.yaml"), *fast_args(), "--runs-dir", str(runs), "--quiet",
                 "--name", "cli-run")
    assert result.exit_code == 0, result.output
    return runs / "cli-run"


def test_version_and_help():
    assert dlx("--version").stdout.startswith("dlx ")
    help_text = dlx("--help").stdout
    for command in ("train", "evaluate", "list", "config", "explain", "generate", "sweep"):
        assert command in help_text


def test_train_prints_a_summary_table(trained):
    assert (trained / "summary.json").is_file()


def test_evaluate_prints_a_table_and_writes_json_and_a_confusion_matrix(trained):
    result = dlx("evaluate", str(trained))
    assert result.exit_code == 0 and "accuracy" in result.stdout and "per class" in result.stdout
    report = json.loads(dlx("evaluate", str(trained), "--json", "--split", "val", "--checkpoint", "last").stdout)
    assert report["split"] == "val" and len(report["confusion_matrix"]) == 10
    assert sum(map(sum, report["confusion_matrix"])) == report["examples"]
    assert 0.0 <= report["metrics"]["accuracy"] <= 1.0
    saved = json.loads((trained / "evaluation.json").read_text())
    assert set(saved) == {"test/best", "val/last"}
    assert (trained / "confusion_matrix-test.png").stat().st_size > 1000


def test_evaluate_matches_the_summary_of_training(trained):
    summary = json.loads((trained / "summary.json").read_text())
    report = json.loads(dlx("evaluate", str(trained), "--json").stdout)
    assert report["metrics"]["accuracy"] == pytest.approx(summary["metrics"]["test"]["accuracy"], abs=1e-6)


def test_list_shows_registries_with_wildcards_and_descriptions():
    result = dlx("list", "models", "c*")
    assert result.exit_code == 0 and "cnn" in result.stdout and "mlp" not in result.stdout
    assert "datasets" in dlx("list").stdout


def test_config_prints_the_resolved_config_with_overrides():
    result = dlx("config", str(EXPERIMENTS / "digits_cnn.yaml"), "--set", "model.width=64")
    assert result.exit_code == 0 and "width: 64" in result.stdout and "lr: 0.002" in result.stdout


def bad_yaml(tmp: Path) -> str:
    (tmp / "bad.yaml").write_text("model: {name: cnn\n")
    return str(tmp / "bad.yaml")


def corrupt_run(tmp: Path, trained: Path) -> str:
    copy = tmp / "corrupt"
    shutil.copytree(trained, copy)
    (copy / "checkpoints" / "best.pt").write_bytes(b"\x00garbage")
    return str(copy)


def foreign_run(tmp: Path, trained: Path) -> str:
    """A run whose checkpoint belongs to another model (a wider CNN)."""
    copy = tmp / "foreign"
    shutil.copytree(trained, copy)
    config = copy / "config.yaml"
    config.write_text(config.read_text().replace("width: 8", "width: 16"))
    return str(copy)


DIGITS = str(EXPERIMENTS / "digits_cnn.yaml")
BAD_INPUTS = {
    "missing file": lambda tmp, run: ["train", str(tmp / "nope.yaml")],
    "invalid yaml": lambda tmp, run: ["train", bad_yaml(tmp)],
    "unknown key": lambda tmp, run: ["train", DIGITS, "--set", "train.epoch=3"],
    "unknown name": lambda tmp, run: ["train", DIGITS, "--set", "model.name=resnet9000"],
    "wrong type": lambda tmp, run: ["train", DIGITS, "--set", "train.epochs=many"],
    "out of range": lambda tmp, run: ["train", DIGITS, "--set", "optimizer.lr=-1"],
    "bad --set syntax": lambda tmp, run: ["train", DIGITS, "--set", "optimizer.lr"],
    "path in name": lambda tmp, run: ["train", DIGITS, "--name", "../outside"],
    "no device": lambda tmp, run: ["train", DIGITS, "--device", "cuda:7"],
    "never-logged monitor": lambda tmp, run: ["train", DIGITS, "--set", "train.monitor=val/f2"],
    "task mismatch": lambda tmp, run: ["train", DIGITS, "--set", "loss.name=mse"],
    "missing run": lambda tmp, run: ["evaluate", str(tmp / "no-run")],
    "unknown split": lambda tmp, run: ["evaluate", str(run), "--split", "holdout"],
    "unknown checkpoint": lambda tmp, run: ["evaluate", str(run), "--checkpoint", "middle"],
    "corrupt checkpoint": lambda tmp, run: ["evaluate", corrupt_run(tmp, run)],
    "foreign checkpoint": lambda tmp, run: ["evaluate", foreign_run(tmp, run)],
    "resume a missing run": lambda tmp, run: ["train", "--resume", str(tmp / "no-run")],
    "unknown registry": lambda tmp, run: ["list", "widgets"],
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_2_and_leaves_no_run(case, tmp_path, trained, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = BAD_INPUTS[case](tmp_path, trained)
    if args[0] == "train":
        args += ["--runs-dir", str(tmp_path / "runs")]
    result = dlx(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, message", [
    (["generate", "x", "--max-new-tokens", "abc"], "Invalid value for '--max-new-tokens'"),
    (["train", "--bogus"], "No such option: --bogus"),
])
def test_the_console_script_turns_typer_usage_errors_into_one_line(args, message, tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "dlx", *args], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
