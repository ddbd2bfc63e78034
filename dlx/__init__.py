"""dlx: deep-learning experiments from YAML files, from the command line or from Python.

    import dlx
    run = dlx.train("experiments/digits_cnn.yaml", set={"train.epochs": 3})
    run.metrics["test"]["accuracy"], run.predict("digits/").rows

The API (dlx.api) loads on first use: `import dlx` stays light (no torch), so `dlx runs` starts at once.
"""
from __future__ import annotations

import importlib
import types
from typing import Any

from dlx.errors import DlxError

__version__ = "0.1.0"
__all__ = ["DlxError", "Run", "open_run", "sweep", "train", "__version__"]

_API = {"Run", "open_run", "PredictOptions", "Predictions"}
_CALLABLE_PACKAGES = {"train", "sweep"}  # also subpackages: see CallablePackage


class CallablePackage(types.ModuleType):
    """dlx.train and dlx.sweep are functions of the API and subpackages too. Once a subpackage is imported Python binds
    its name in dlx to the package, so the package itself forwards a call to the API function of its name."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        api = importlib.import_module("dlx.api")
        return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _CALLABLE_PACKAGES:
        return importlib.import_module(f"dlx.{name}")
    if name in _API:
        return getattr(importlib.import_module("dlx.api"), name)
    raise AttributeError(f"module 'dlx' has no attribute '{name}'")
