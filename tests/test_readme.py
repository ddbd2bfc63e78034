"""The README's examples run: every line of a ```bash readme-test block, in a fresh folder."""
from __future__ import annotations

import re
import shlex
import shutil

import pytest
from typer.testing import CliRunner

from dlx.cli import app
from tests.conftest import ROOT

BLOCK = re.compile(r"```bash readme-test\n(.*?)```", re.S)


def readme_blocks() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    return [[line.split("#")[0].strip() for line in block.splitlines() if line.strip().startswith("dlx ")]
            for block in BLOCK.findall(text)]


@pytest.mark.parametrize("commands", readme_blocks(), ids=lambda c: c[0][:60])
def test_readme_examples_run(commands, tmp_path, monkeypatch):
    shutil.copytree(ROOT / "experiments", tmp_path / "experiments")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(app, shlex.split(command)[1:])
        assert result.exit_code == 0, f"{command}\n{result.output}"


def test_the_readme_has_examples():
    assert readme_blocks()
