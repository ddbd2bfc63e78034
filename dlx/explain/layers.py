"""Finding a model's layers by module path, and the shapes of their outputs.

Hooks are registered inside a context manager that removes them however the forward pass ends.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dlx.errors import DlxError


@dataclass(frozen=True)
class Layer:
    name: str  # the module path, e.g. "features.4"
    kind: str  # the module's class name
    shape: tuple[int, ...]  # of its output for one sample, batch dimension included

    @property
    def is_feature_map(self) -> bool:
        return len(self.shape) == 4  # (B, C, H, W): what GradCAM can weigh and sum


@contextmanager
def recording_outputs(model: nn.Module) -> Iterator[list[Layer]]:
    """Every submodule's output shape, in the order the forward pass produces them."""
    seen: list[Layer] = []
    handles = []

    def hook(name: str):
        def record(module: nn.Module, args, output) -> None:
            if isinstance(output, tuple) and output and isinstance(output[0], Tensor):
                output = output[0]  # a recurrent layer's outputs, beside its final state
            if isinstance(output, Tensor):
                seen.append(Layer(name, type(module).__name__, tuple(output.shape)))
        return record

    try:
        for name, module in model.named_modules():
            if name:
                handles.append(module.register_forward_hook(hook(name)))
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def trace(model: nn.Module, x: Tensor) -> list[Layer]:
    """The layers a forward pass of `x` goes through, each once, with its output shape."""
    with recording_outputs(model) as seen, torch.no_grad():
        model(x)
    first: dict[str, Layer] = {}
    for layer in seen:
        first.setdefault(layer.name, layer)
    return list(first.values())


def find(model: nn.Module, name: str, x: Tensor) -> nn.Module:
    """The module at path `name`; an unknown name lists the feature-map layers GradCAM could use."""
    modules = dict(model.named_modules())
    if name and name in modules:
        return modules[name]
    candidates = [layer.name for layer in trace(model, x) if layer.is_feature_map]
    hint = f"candidates: {', '.join(candidates)}" if candidates else "this model has no feature-map layer"
    raise DlxError(f"--layer '{name}': no such layer ({hint}; `dlx explain RUN --list-layers` shows their shapes)")


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def needs_conv(model: nn.Module) -> str | None:
    """Why a method that reads 2-d conv layers cannot explain `model`, or None."""
    return None if conv_layers(model) else "needs a model with a 2-d conv layer, and this one has none"


def conv_layer(model: nn.Module, which: int) -> tuple[str, nn.Conv2d]:
    """The first (which=0) or last (which=-1) 2-d convolution, in the order the model defines them (explainers
    that call this require needs_conv)."""
    return conv_layers(model)[which]
