"""`dlx runs`: the table with each run's status, sorting and filtering; `runs compare` lists exactly the keys
that differ; `runs rm` asks first and deletes nothing that is not a run."""
from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from typer.testing import CliRunner

from dlx.cli import app
from dlx import runs_table
from dlx.compare import differing_keys
from dlx.runs_table import CROSS_VALIDATED, FINISHED, INTERRUPTED, SWEEP, UNFINISHED, find, order, select
from dlx.run import checkpoint
from tests import made_runs
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


@pytest.fixture
def made(tmp_path):
    """Hand-made folders: two runs, a cross-validation and a sweep (no training)."""
    root = tmp_path / "runs"
    made_runs.run(root / "low", 0.80)
    made_runs.run(root / "high", 0.90, "optimizer.lr=0.01")
    made_runs.cross_validation(root / "cv", [0.85, 0.87])
    made_runs.sweep(root / "study", [0.70, 0.95, 0.90])
    return root


def test_a_sweep_is_one_row_with_its_best_trial_and_a_cross_validation_one_with_its_folds(made):
    rows = {row.name: row for row in find(made)}
    assert set(rows) == {"low", "high", "cv", "cv/fold-1", "cv/fold-2", "study"}
    assert rows["study"].status == SWEEP and rows["study"].best == 0.95
    assert rows["study"].detail == "3 trials, 3 finished, best trial-0001"
    assert rows["study"].values["test/accuracy"] == pytest.approx(0.94)
    assert rows["cv"].status == CROSS_VALIDATED and rows["cv"].detail == "2 folds"
    result = dlx("runs", "--runs-dir", made, "--filter", "status=sweep")
    assert result.exit_code == 0 and "1 run in" in result.stdout and "study" in result.stdout


@pytest.mark.parametrize("key, extra", [("test/loss", ["test/loss"]), ("test/accuracy", []), ("epochs", [])])
def test_the_table_shows_the_key_it_is_sorted_by(made, key, extra):
    """A key no other column shows gets a column of its own; test/accuracy and epochs are columns anyway."""
    rows = order(find(made), key)
    table = runs_table.table(rows, "runs", key)
    headers = [column.header for column in table.columns]
    assert headers == ["run", "data / model", "status", "epochs", "best val/accuracy", "test/accuracy", *extra, "time"]
    assert table.title == f"runs, sorted by {key}"
    result = dlx("runs", "--runs-dir", made, "--sort", key)
    assert result.exit_code == 0 and "sorted by" in result.stdout


def test_a_filter_on_a_setting_a_run_lacks_fills_in_its_default(made):
    """A run saved before a setting existed: the filter compares the setting's default."""
    config = made / "low" / "config.yaml"
    config.write_text(config.read_text().replace("  init: auto\n", ""))
    assert "init" not in config.read_text() and "model.init" not in find_row(made, "low").config
    assert [row.name for row in select(find(made), ["model.init=auto"]) if "/" not in row.name] == ["cv", "high", "low",
                                                                                                      "study"]


def test_compare_labels_curves_by_what_differs_and_ticks_whole_epochs(committee, tmp_path):
    report = json.loads(dlx("runs", "compare", committee[0], committee[2], "--out", tmp_path / "c.png", "--json").stdout)
    assert report["labels"] == ["lr=0.002, seed=1", "lr=0.003, seed=3"]
    from dlx import plots

    history = [{"epoch": e, "val/loss": 1 / e} for e in range(1, 4)]
    figure = plots.learning_curves_figure({"lr=0.1": history, "lr=0.2": history}, ["val/loss"])
    ticks = figure.axes[0].get_xticks()
    assert len(ticks) and all(t == int(t) for t in ticks)
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == ["lr=0.1", "lr=0.2"]
    plots.close(figure)


# each command that reads run folders, with what it needs; a finished run, a cross-validation and a sweep are there
TORCH_FREE = {
    "help": lambda root: ["--help"],
    "runs": lambda root: ["runs", "--runs-dir", root, "--sort", "test/accuracy"],
    "runs compare": lambda root: ["runs", "compare", root / "low", root / "high", "--out", root / "c.png"],
    "runs rm": lambda root: ["runs", "rm", root / "low", "--yes"],
}


@pytest.mark.parametrize("command", TORCH_FREE, ids=list(TORCH_FREE))
def test_commands_that_read_run_folders_never_import_torch(made, command):
    import subprocess
    import sys

    args = [str(a) for a in TORCH_FREE[command](made)]
    script = ("import atexit, sys\n"
              "atexit.register(lambda: print('LOADED', sorted(m for m in ('torch', 'torchmetrics', 'optuna', 'sklearn')"
              " if m in sys.modules)))\n"
              f"sys.argv = ['dlx', *{args!r}]\n"
              "from dlx.cli import run\nrun()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "LOADED []", done.stdout
