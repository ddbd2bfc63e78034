"""train.threads: a number as given, null as PyTorch's, and auto chosen from the free cores and the model's work,
recorded in the run's config so that the run reproduces; evaluate, explain and generate compute with the same count."""
from __future__ import annotations

import json
import time

import pytest
import torch
from typer.testing import CliRunner

from dlx import threads
from dlx.cli import app
from dlx.config import load
from dlx.errors import ConfigError, DlxError
from dlx.train import loop

from tests.conftest import EXPERIMENTS

TINY = ["train.epochs=1", "model.width=8", "model.hidden=16", "train.device=cpu", "train.checkpoint_seconds=0"]


@pytest.fixture(autouse=True)
def keep_thread_count():
    count = torch.get_num_threads()
    yield
    torch.set_num_threads(count)


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("3", 3), ("null", None)])
def test_config_takes_a_count_auto_or_null(value, expected):
    assert load(EXPERIMENTS / "digits_cnn.yaml", [f"train.threads={value}"]).train.threads == expected


def test_auto_is_the_default():
    assert load(EXPERIMENTS / "digits_cnn.yaml").train.threads == "auto"


@pytest.mark.parametrize("value", ["0", "1025", "true", "'3'", "many"])
def test_config_refuses_other_counts_in_one_line(value):
    with pytest.raises(ConfigError) as caught:
        load(EXPERIMENTS / "digits_cnn.yaml", [f"train.threads={value}"])
    assert len(caught.value.problems) == 1 and "give a number of threads from 1 to 1024" in caught.value.problems[0]


def test_a_given_count_is_set():
    choice = threads.choose(3, probe=lambda: pytest.fail("a given count is not timed"))
    assert choice.threads == 3 == torch.get_num_threads()


def test_null_keeps_pytorchs_count():
    torch.set_num_threads(2)
    assert threads.choose(None, None).threads == 2 == torch.get_num_threads()


def test_auto_takes_one_thread_when_one_core_is_free(monkeypatch):
    monkeypatch.setattr(threads, "free_cores", lambda: 1)
    choice = threads.choose("auto", probe=lambda: pytest.fail("one free core needs no timing"))
    assert choice.threads == 1 == torch.get_num_threads() and "auto" in choice.line()


def sleeping_probe(one: float, many: float):
    """A forward pass that takes `one` seconds on one thread and `many` on more."""
    return lambda: time.sleep(one if torch.get_num_threads() == 1 else many)


@pytest.mark.parametrize("one, many, expected", [
    (0.01, 0.002, 2),   # more threads clearly pay: take them
    (0.002, 0.01, 1),   # they slow it down (a busy core): one
    (0.005, 0.0048, 1),  # no clear gain: one, which costs the machine least
])
def test_auto_times_the_forward_pass_on_the_free_cores(monkeypatch, one, many, expected):
    monkeypatch.setattr(threads, "free_cores", lambda: 2)
    choice = threads.choose("auto", sleeping_probe(one, many))
    assert choice.threads == expected == torch.get_num_threads()
    assert "1 thread" in choice.line() and "on 2" in choice.line()


@pytest.mark.parametrize("text, expected", [("auto", "auto"), ("1", 1), ("12", 12)])
def test_parse_reads_the_option(text, expected):
    assert threads.parse(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "1025", "two", ""])
def test_parse_refuses_in_one_line(text):
    with pytest.raises(DlxError, match="--threads"):
        threads.parse(text)


def test_auto_is_recorded_and_the_saved_config_reproduces_the_run(tmp_path, monkeypatch, capsys):
    """The run's config.yaml holds the count auto chose (2 here, as on an idle machine), and training from it
    repeats every logged number."""
    monkeypatch.setattr(threads, "free_cores", lambda: 2)
    monkeypatch.setattr(threads, "fastest", lambda probe, most: threads.Choice(most, "auto: stubbed"))
    torch.set_num_threads(1)  # the count auto chooses must be the one the run computes with, whatever came before
    first, _ = loop.start(load(EXPERIMENTS / "digits_cnn.yaml", [*TINY, "train.threads=auto"]), tmp_path, quiet=True)
    assert "CPU threads: 2 (auto: stubbed)" in capsys.readouterr().err
    saved = load(first.path / "config.yaml")
    assert saved.train.threads == 2
    torch.set_num_threads(1)  # the rerun must not depend on the count left behind
    again, _ = loop.start(saved, tmp_path, quiet=True)
    assert again.path != first.path
    assert (first.path / "metrics.jsonl").read_text() == (again.path / "metrics.jsonl").read_text()
    assert torch.load(first.path / "checkpoints" / "last.pt", weights_only=False)["config"]["train"]["threads"] == 2


def test_evaluate_and_explain_compute_with_the_runs_count(tmp_path):
    run, _ = loop.start(load(EXPERIMENTS / "digits_cnn.yaml", [*TINY, "train.threads=2"]), tmp_path, quiet=True)
    torch.set_num_threads(1)
    result = CliRunner().invoke(app, ["evaluate", str(run.path), "--json"])
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)
    result = CliRunner().invoke(app, ["explain", str(run.path), "--method", "saliency", "--index", "0"])
    assert result.exit_code == 0, result.output
    assert torch.get_num_threads() == 2
    assert json.loads((run.path / "explanations" / "test-0" / "explanation.json").read_text())["methods"]["saliency"]


@pytest.fixture(scope="module")
def language_run(tmp_path_factory):
    from dlx.config import validate

    folder = tmp_path_factory.mktemp("lm")
    (folder / "t.txt").write_text("the cat sat on the mat. the dog sat on the log.\n" * 20)
    config = validate({
        "name": "lm", "data": {"name": "text", "path": str(folder / "t.txt"), "block_size": 8, "steps_per_epoch": 2,
                               "eval_windows": 4, "split": [0.8, 0.1, 0.1]},
        "model": {"name": "char_lstm", "hidden": 8, "layers": 1},
        "train": {"epochs": 1, "batch_size": 4, "device": "cpu", "threads": 2},
    })
    run, _ = loop.start(config, folder / "runs", quiet=True)
    return run.path


@pytest.mark.parametrize("option, expected, line", [
    ([], 2, None),                                  # the count the run trained with, said nowhere
    (["--threads", "1"], 1, "CPU threads: 1 (as given)"),
    (["--threads", "auto"], None, "CPU threads: "),  # whatever the machine allows, said in one line
])
def test_generate_takes_threads(language_run, option, expected, line):
    torch.set_num_threads(3)
    result = CliRunner().invoke(app, ["generate", str(language_run), "--max-new-tokens", "5", "--seed", "0", *option])
    assert result.exit_code == 0, result.output
    if expected is not None:
        assert torch.get_num_threads() == expected
    if line is None:
        assert "CPU threads" not in result.stderr
    else:
        assert len([x for x in result.stderr.splitlines() if line in x]) == 1


def test_generate_refuses_a_bad_thread_count_in_one_line(language_run):
    result = CliRunner().invoke(app, ["generate", str(language_run), "--threads", "0"])
    assert result.exit_code == 2 and "--threads 0" in result.stderr and "Traceback" not in result.output


def test_a_busy_loop_started_a_moment_ago_takes_a_core():
    """The one-minute load average lags a busy loop by a minute; the cores' busy time sees it at once."""
    import subprocess
    import sys
    loop_ = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert threads.busy_cores(0.2) >= 0.9
        assert threads.free_cores() <= max(1, threads.cpu_count() - 1)
    finally:
        loop_.kill()
        loop_.wait()


def test_free_cores_falls_back_to_the_load_average_without_proc_stat(monkeypatch):
    monkeypatch.setattr(threads, "core_times", lambda cores: None)
    monkeypatch.setattr(threads, "load_average", lambda: threads.cpu_count() + 5.0)
    assert threads.busy_cores() is None and threads.free_cores() == 1
