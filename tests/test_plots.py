"""dlx.plots is the one place that writes figures: whole files (a planted link replaced, never written through),
the figure freed; no other module saves or closes a matplotlib figure itself."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dlx import plots
from dlx.plots import plt

PACKAGE = Path(__file__).resolve().parents[1] / "dlx"
BENCH = PACKAGE.parent / "bench"


def figure_calls(path: Path) -> list[str]:
    """Lines that save a figure, close one or pick matplotlib's backend."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else None
            if node.func.attr == "savefig" or (owner in ("plt", "matplotlib") and node.func.attr in ("close", "use")):
                found.append(f"line {node.lineno}: {ast.unparse(node.func)}")
    return found


SOURCES = sorted(p for p in [*PACKAGE.rglob("*.py"), *BENCH.rglob("*.py")] if p != PACKAGE / "plots.py")


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACKAGE.parent)) for p in SOURCES])
def test_only_dlx_plots_saves_or_closes_figures(path):
    assert not figure_calls(path), f"{path.name}: save figures with dlx.plots.save or save_pixels"


def _figure():
    figure, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [1, 0])
    return figure


@pytest.mark.parametrize("write", [
    lambda path: plots.save(_figure(), path),
    lambda path: plots.save(_figure(), path, crop=True),
    lambda path: plots.save_pixels(plots.pixels(_figure()), path),
], ids=["laid out", "cropped", "pixels"])
def test_a_figure_is_written_whole_over_a_planted_link_and_freed(write, tmp_path):
    elsewhere = tmp_path / "elsewhere.png"
    elsewhere.write_bytes(b"not ours")
    path = tmp_path / "run" / "figure.png"
    path.parent.mkdir()
    path.symlink_to(elsewhere)
    open_before = len(plt.get_fignums())
    assert write(path) == path
    assert not path.is_symlink() and elsewhere.read_bytes() == b"not ours"
    with Image.open(path) as image:
        assert image.format == "PNG" and min(image.size) > 50
    assert len(plt.get_fignums()) == open_before  # the figure drawn for it is closed again
    assert sorted(p.name for p in path.parent.iterdir()) == ["figure.png"]  # no temporary file left


def test_pixels_and_their_png_are_the_same_image(tmp_path):
    rgb = plots.pixels(_figure())
    assert rgb.dtype == np.uint8 and rgb.shape[2] == 3
    with Image.open(plots.save_pixels(rgb, tmp_path / "f.png")) as image:
        assert np.array_equal(np.asarray(image), rgb)
