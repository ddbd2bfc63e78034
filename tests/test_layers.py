"""No import runs up the layers: each dlx module imports only from its own layer or the layers below it.

A lower layer (the parts a run is built from) must not reach for a higher one (the commands that use
them): otherwise training would load the generation command, a model the evaluation report. Every
import counts, also one inside a function."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dlx"

# lowest first; a module belongs to the first prefix that matches its dotted name (without "dlx.")
LAYERS: list[tuple[str, ...]] = [
    ("errors", "atomic", "schema", "limits", "registry", "allocator", ""),  # "": the package itself (dlx.__version__)
    ("data",),
    ("config",),
    ("models", "losses", "mining", "metrics", "sequence_metrics", "bits", "retrieval", "objectives", "optim", "schedules", "plots", "tables",
     "threads", "sample_grid"),
    ("build",),
    ("run", "judge"),  # a judge opens a trained run; training and evaluation ask it
    ("train",),
    ("generate", "explain", "lr_find", "schedule_plot"),
    ("analysis", "committee", "gallery", "crossval", "evaluate", "embeddings", "translation_report", "predict", "export"),
    ("runs_table", "compare", "sweep"),
    ("api", "api_checks"),
    ("cli", "__main__"),
]


def layer(module: str) -> int:
    """The layer of a dotted module name below dlx, e.g. 'train.loop' or 'models'."""
    top = module.split(".")[0]
    for rank, names in enumerate(LAYERS):
        if top in names:
            return rank
    raise AssertionError(f"dlx.{module} is in no layer: add it to LAYERS in {Path(__file__).name}")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    return (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name).is_dir()


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module below dlx) for every dlx import in the file, `from dlx import x` counted as module x."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "dlx":  # a submodule, or a name the package itself defines (dlx.CallablePackage)
                found += [(node.lineno, f"dlx.{alias.name}" if is_module(alias.name) else "dlx") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, name.removeprefix("dlx").removeprefix(".")) for line, name in sorted(found)
            if name == "dlx" or name.startswith("dlx.")]


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_no_import_runs_up_the_layers(path):
    own = layer(module_name(path))
    upward = [f"line {line}: dlx.{name} (layer {layer(name)})" for line, name in imported(path) if layer(name) > own]
    assert not upward, f"dlx.{module_name(path)} (layer {own}) imports from higher layers: {upward}"


def test_the_rule_sees_imports_inside_functions_and_from_the_package(tmp_path):
    source = tmp_path / "x.py"
    source.write_text("from dlx import build, errors\n\ndef f():\n    from dlx.train import loop\n    import dlx.cli\n")
    assert imported(source) == [(1, "build"), (1, "errors"), (4, "train"), (5, "cli")]
