import subprocess
import sys
from dataclasses import dataclass
from typing import Annotated

import pytest
from pydantic import Field

from dlx import registry
from dlx.errors import ConfigError, UnknownName
from tests.conftest import ROOT


@pytest.fixture
def reg():
    r = registry.Registry("widget")

    @r.register("resnet_a", "first", aliases=("ra",))
    def a(runtime, *, width: Annotated[int, Field(ge=1)] = 4, act: str = "relu"):
        return runtime, width, act

    @dataclass
    class BConfig:
        depth: int = 2

    @r.register("resnet_b", config=BConfig)
    class B:
        """Second widget.

        More text."""

        def __init__(self, runtime, config: BConfig):
            self.config = config

    @r.register("vgg")
    def c():
        """Third."""

    return r


def test_wildcards_aliases_and_descriptions(reg):
    assert [e.name for e in reg.list("res*")] == ["resnet_a", "resnet_b"]
    assert [e.name for e in reg.list("r?")] == ["resnet_a"]  # through its alias
    assert reg.get("ra").name == "resnet_a"
    assert reg.get("resnet_b").description == "Second widget."
    assert reg.aliases_of("resnet_a") == ["ra"]


def test_unknown_name_suggests_the_closest(reg):
    with pytest.raises(UnknownName, match="did you mean 'vgg'"):
        reg.get("vggg")


def test_registering_a_name_twice_is_an_error(reg):
    with pytest.raises(ValueError, match="twice"):
        reg.register("vgg")(lambda: None)


def test_settings_are_validated_and_completed(reg):
    assert reg.get("resnet_a").resolve({"width": 8}, "model") == {"width": 8, "act": "relu"}
    with pytest.raises(ConfigError) as e:
        reg.get("resnet_a").resolve({"widht": 8}, "model")
    assert e.value.problems == ["model.widht: unknown setting for 'resnet_a' (did you mean 'width'?)"]
    with pytest.raises(ConfigError, match="model.width: input should be greater than or equal to 1"):
        reg.get("resnet_a").resolve({"width": 0}, "model")


def test_build_passes_runtime_positionally_and_config_dataclasses_whole(reg):
    assert reg.get("resnet_a").build("rt", width=2, act="tanh") == ("rt", 2, "tanh")
    assert reg.get("resnet_b").build("rt", depth=5).config.depth == 5


REGISTRIES = list(registry.ALL.values())


@pytest.mark.parametrize("entry", [(r, e) for r in REGISTRIES for e in r.list()],
                         ids=lambda p: f"{p[0].kind}:{p[1].name}")
def test_every_entry_has_a_description_and_valid_defaults(entry):
    reg, e = entry
    assert e.description, f"{reg.kind} {e.name} needs a one-line description"
    required = {k for k, (_, d) in e._fields.items() if d is ...}
    if not required:
        assert e.resolve({}, reg.kind) == e.defaults()


LAZY = registry.Registry("gadget", ("gadget_entries",))


def test_a_registry_imports_the_modules_of_its_entries_on_first_use(tmp_path, monkeypatch):
    (tmp_path / "gadget_entries.py").write_text(
        "from tests.test_registry import LAZY\n\n\n@LAZY.register('knob', 'a knob')\ndef knob():\n    pass\n")
    monkeypatch.syspath_prepend(tmp_path)
    monkeypatch.delitem(sys.modules, "gadget_entries", raising=False)
    assert LAZY.names() == ["knob"] and "gadget_entries" in sys.modules
    assert LAZY.get("knob").description == "a knob" and "knob" in LAZY


@pytest.mark.parametrize("args", [["list"], ["list", "metrics"], ["config", "experiments/digits_cnn.yaml"]],
                         ids=" ".join)
def test_listing_and_configs_import_no_library_an_entry_needs_only_to_run(args):
    """torchmetrics, torchvision, scikit-learn, scipy, captum, scikit-image and optuna load when an entry is built."""
    heavy = ("torchmetrics", "torchvision", "sklearn", "scipy", "captum", "skimage", "optuna", "matplotlib")
    script = (f"import atexit, sys\natexit.register(lambda: print('LOADED', [m for m in {heavy!r} if m in sys.modules]))\n"
              f"sys.argv = ['dlx', *{args!r}]\nfrom dlx.cli import run\nrun()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "LOADED []", done.stdout


@pytest.mark.parametrize("name", registry.metrics.names())
def test_each_metrics_direction_is_torchmetrics_own(name):
    """The loop, sweeps, the runs table and compare read a metric's direction from its registry entry (no torchmetrics
    import); it must be what the torchmetrics class says."""
    from dlx.data.base import CLASSIFICATION, LANGUAGE, DataSpec
    from dlx.metrics import higher_is_better

    entry = registry.metrics.get(name)
    task = entry.meta["task"]
    spec = DataSpec((4,), task, num_classes=10 if task in (CLASSIFICATION, LANGUAGE) else 0, out_features=1)
    assert higher_is_better(f"val/{name}") == bool(entry.build(spec).higher_is_better)
