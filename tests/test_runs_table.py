"""`dlx runs`: the table with each run's status, sorting and filtering; `runs compare` lists exactly the keys
that differ; `runs rm` asks first and deletes nothing that is not a run."""
from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from typer.testing import CliRunner

from dlx.cli import app
from dlx.compare import differing_keys
from dlx.runs_table import FINISHED, INTERRUPTED, UNFINISHED, find, order, select
from dlx.run import checkpoint
from tests.trained_runs import committee  # noqa: F401  (fixture)

runner = CliRunner()


def dlx(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


@pytest.fixture
def runs(committee, tmp_path):
    """The three committee runs, plus copies that look interrupted and crashed."""
    root = tmp_path / "runs"
    root.mkdir()
    for path in committee:
        shutil.copytree(path, root / path.name)
    state = checkpoint.load(root / "m1" / "checkpoints" / "last.pt")
    for name, batch in (("stopped", 3), ("crashed", 0)):
        shutil.copytree(root / "m1", root / name)
        (root / name / "summary.json").unlink()
        checkpoint.save(dataclasses.replace(state, loop={**state.loop, "batch": batch}), root / name / "checkpoints" / "last.pt")
    (root / "notes").mkdir()  # not a run: ignored
    return root


def test_differing_keys_are_the_dotted_keys_whose_values_differ():
    a = {"name": "a", "seed": 1, "model": {"name": "mlp", "sizes": "64"}, "optimizer": {"lr": 0.1, "name": "adam"}}
    b = {"name": "b", "seed": 1, "model": {"name": "cnn", "width": 8}, "optimizer": {"lr": 0.1, "name": "adam"}}
    assert differing_keys([a, b]) == ["model.name", "model.sizes", "model.width"]
    assert differing_keys([a, a]) == []


def test_runs_compare_lists_exactly_the_differing_keys(committee, tmp_path):
    png = tmp_path / "curves.png"
    result = dlx("runs", "compare", committee[0], committee[2], "--out", png, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["differences"] == {"optimizer.lr": [0.002, 0.003], "seed": [1, 3]}
    assert report["metrics"]["test/accuracy"] == [
        json.loads((p / "summary.json").read_text())["metrics"]["test"]["accuracy"] for p in (committee[0], committee[2])]
    assert png.stat().st_size > 1000
    table = dlx("runs", "compare", *committee, "--out", png).stdout
    assert "optimizer.lr" in table and "seed" in table and "model.sizes" not in table and str(png) in table


def test_the_table_tells_finished_interrupted_and_unfinished_runs_apart(runs):
    rows = {row.name: row for row in find(runs)}
    assert set(rows) == {"m1", "m2", "m3", "stopped", "crashed"}
    assert [rows[n].status for n in ("m1", "stopped", "crashed")] == [FINISHED, INTERRUPTED, UNFINISHED]
    assert rows["m1"].epochs == 3 and rows["stopped"].epochs == 3 and rows["m1"].monitor == "val/accuracy"
    assert rows["stopped"].best == rows["m1"].best  # from metrics.jsonl when there is no summary
    result = dlx("runs", "--runs-dir", runs)
    assert result.exit_code == 0 and "5 runs in" in result.stdout and "stopped" in result.stdout


def test_sort_puts_the_best_first_and_filter_keeps_matching_runs(runs):
    def names(sort=None, *filters):
        return [row.name for row in order(select(find(runs), list(filters)), sort)]

    accuracy = {row.name: row.values["test/accuracy"] for row in find(runs) if "test/accuracy" in row.values}
    assert names("test/accuracy", "status=finished") == sorted(accuracy, key=accuracy.get, reverse=True)
    assert set(names("test/loss")[-2:]) == {"crashed", "stopped"}  # runs without the value go last
    assert names("test/loss")[:3] == sorted(accuracy, key=lambda n: find_row(runs, n).values["test/loss"])
    assert names(None, "seed=3") == ["m3"]
    assert names(None, "optimizer.lr=0.002", "status=interrupted") == ["stopped"]
    assert names("epochs") and names("name") == sorted(names())
    assert dlx("runs", "--runs-dir", runs, "--sort", "test/accuracy", "--filter", "seed=1").exit_code == 0


def find_row(runs, name):
    return next(row for row in find(runs) if row.name == name)


def test_rm_asks_first_and_deletes_only_runs(runs):
    result = dlx("runs", "rm", runs / "m2", input="n\n")
    assert result.exit_code == 1 and "delete" in result.stdout and (runs / "m2").is_dir()
    result = dlx("runs", "rm", runs / "m2", input="y\n")
    assert result.exit_code == 0 and not (runs / "m2").exists()
    assert dlx("runs", "rm", runs / "m3", "--yes").exit_code == 0 and not (runs / "m3").exists()
    for not_a_run in (runs / "notes", runs, runs / "m1" / "checkpoints"):
        result = dlx("runs", "rm", not_a_run, "--yes")
        assert result.exit_code == 2 and "not a dlx run folder" in result.stderr and not_a_run.is_dir()


@pytest.mark.parametrize("args, message", [
    (["--sort", "acc"], "choose from"),
    (["--filter", "sed=1"], "did you mean 'seed'"),
    (["--filter", "seed"], "KEY=VALUE"),
    (["compare", "X"], "two or more run folders"),
    (["compare", "X", "missing"], "not a dlx run folder"),
    (["rm", "missing"], "no such run folder"),
])
def test_bad_inputs_exit_2_with_one_line(runs, args, message):
    args = [str(runs / "m1") if a == "X" else str(runs / a) if a == "missing" else a for a in args]
    result = dlx("runs", "--runs-dir", runs, *args) if args[0].startswith("--") else dlx("runs", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_missing_runs_folder_is_one_line(tmp_path):
    result = dlx("runs", "--runs-dir", tmp_path / "nowhere")
    assert result.exit_code == 2 and "no such runs folder" in result.stderr
