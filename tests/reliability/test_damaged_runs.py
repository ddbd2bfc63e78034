"""`dlx runs` over a runs folder with damaged files (a cut-off or foreign summary.json, cv_summary.json or config.yaml):
the damaged run is one row saying what is damaged, every other run is listed as before, and nothing is a traceback."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dlx.cli import app
from dlx.runs_table import DAMAGED, FINISHED, find
from tests import made_runs

DAMAGE = {  # what is written over the file -> what the row says
    "summary.json cut off": ("good/summary.json", lambda text: text[: len(text) // 2], "summary.json is not valid JSON"),
    "summary.json empty": ("good/summary.json", lambda text: "", "summary.json is not valid JSON"),
    "summary.json a list": ("good/summary.json", lambda text: "[1, 2]", "summary.json lacks metrics"),
    "summary.json foreign": ("good/summary.json", lambda text: '{"metrics": [1]}', "summary.json is not a dlx summary"),
    "summary.json binary": ("good/summary.json", lambda text: "\udcff\x00\x01", "summary.json is not valid JSON"),
    "cv_summary.json cut off": ("cv/cv_summary.json", lambda text: text[:-5], "cv_summary.json is not valid JSON"),
    "cv_summary.json foreign": ("cv/cv_summary.json", lambda text: text.replace('"mean"', '"average"'),
                                "cv_summary.json is not a dlx cross-validation summary"),
    "config.yaml not YAML": ("good/config.yaml", lambda text: "model: {name: [\n", "invalid YAML"),
}


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    made_runs.run(root / "good", 0.9)
    made_runs.run(root / "other", 0.8)
    made_runs.cross_validation(root / "cv", [0.85, 0.87])
    return root


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_run_is_one_row_and_the_others_stay(runs, damage):
    relative, spoil, says = DAMAGE[damage]
    path = runs / relative
    path.write_bytes(spoil(path.read_text()).encode("utf-8", "surrogateescape"))
    rows = {row.name: row for row in find(runs)}
    damaged = rows[path.parent.name]
    assert damaged.status == DAMAGED and says in damaged.detail
    assert rows["other"].status == FINISHED and rows["other"].best == 0.8
    assert {"cv/fold-1", "cv/fold-2"} <= set(rows)
    result = CliRunner().invoke(app, ["runs", "--runs-dir", str(runs)])
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "damaged" in result.stdout and "other" in result.stdout
    for options in (["--sort", "test/accuracy"], ["--filter", "status=damaged"]):
        shown = CliRunner().invoke(app, ["runs", "--runs-dir", str(runs), *options])
        assert shown.exit_code == 0, shown.output
    assert "1 run in" in shown.stdout
