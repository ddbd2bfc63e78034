"""examples/course_walkthrough.ipynb runs from top to bottom (in a fresh folder), so it never rots."""
from __future__ import annotations

import shutil

import nbformat
from nbclient import NotebookClient

from tests.conftest import ROOT


def test_the_course_walkthrough_runs(tmp_path):
    shutil.copytree(ROOT / "experiments", tmp_path / "experiments")
    notebook = nbformat.read(ROOT / "examples" / "course_walkthrough.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("predicted as labelled" in o.get("text", "") for o in outputs)
