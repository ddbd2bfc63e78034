"""The README's examples run: every line of a ```bash readme-test block, and every ```python readme-test block, each in
a fresh folder with the experiments."""
from __future__ import annotations

import re
import shlex
import shutil

import pytest
from typer.testing import CliRunner

from dlx.cli import app
from tests.conftest import ROOT

BLOCK = re.compile(r"```bash readme-test\n(.*?)```", re.S)
PYTHON_BLOCK = re.compile(r"```python readme-test\n(.*?)```", re.S)


def readme_blocks() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    return [[line.split("#")[0].strip() for line in block.splitlines() if line.strip().startswith("dlx ")]
            for block in BLOCK.findall(text)]


@pytest.fixture
def fresh_folder(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "experiments", tmp_path / "experiments")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("commands", readme_blocks(), ids=lambda c: c[0][:60])
def test_readme_examples_run(commands, fresh_folder):
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(app, shlex.split(command)[1:])
        assert result.exit_code == 0, f"{command}\n{result.output}"


@pytest.mark.parametrize("code", PYTHON_BLOCK.findall((ROOT / "README.md").read_text()), ids=lambda c: c.split("\n")[0][:60])
def test_readme_python_examples_run(code, fresh_folder):
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


def test_the_readme_has_examples():
    assert readme_blocks() and PYTHON_BLOCK.findall((ROOT / "README.md").read_text())
