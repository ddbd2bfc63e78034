"""Weight initialisation by name, with the course's formulas (n = fan-in, m = fan-out):

    lecun_normal  N(0, 1/n)          lecun_uniform  U(+-sqrt(3/n))
    glorot_normal N(0, 2/(m+n))      glorot_uniform U(+-sqrt(6/(m+n)))
    he_normal     N(0, 2/n)          he_uniform     U(+-sqrt(6/n))
    small_normal  N(0, 0.01^2)       the "old default": small random values near 0

`auto` pairs the initialiser with the layer's activation as the course does: Glorot for
none/tanh/logistic/softmax, He for ReLU and its variants, LeCun for SELU. Fans are counted as
torch.nn.init counts them (a conv's fan-in is in_channels * kernel area). Biases start at 0.
"""
from __future__ import annotations

import typing
from collections.abc import Callable
from functools import partial
from typing import Annotated, Literal

from pydantic import Field
from torch import Tensor, nn

from dlx.models.activations import ActivationName
from dlx.registry import initializers

InitName = Literal["auto", "lecun_normal", "lecun_uniform", "glorot_normal", "glorot_uniform", "he_normal",
                   "he_uniform", "small_normal", "pytorch"]

# LeCun's scaled tanh was designed for unit-variance inputs with N(0, 1/n) weights; the other
# ReLU-like units (leaky ReLU, ELU, GELU, softplus) take He's factor 2 for the half they cut off.
PAIRING: dict[str, str] = {
    "identity": "glorot_normal", "tanh": "glorot_normal", "logistic": "glorot_normal",
    "lecun_tanh": "lecun_normal", "selu": "lecun_normal",
    "relu": "he_normal", "leaky_relu": "he_normal", "elu": "he_normal", "gelu": "he_normal", "softplus": "he_normal",
}
assert set(PAIRING) == set(typing.get_args(ActivationName)), "every activation needs an initialiser pairing"

# the layers whose weights an initialiser draws; everything else keeps its own initialisation
LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)


@initializers.register("lecun_normal", "LeCun normal N(0, 1/n), n = fan-in (pairs with SELU)")
def lecun_normal(weight: Tensor) -> None:
    nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="linear")


@initializers.register("lecun_uniform", "LeCun uniform U(+-sqrt(3/n)), n = fan-in")
def lecun_uniform(weight: Tensor) -> None:
    nn.init.kaiming_uniform_(weight, mode="fan_in", nonlinearity="linear")


@initializers.register("glorot_normal", "Glorot (Xavier) normal N(0, 2/(m+n)) (pairs with none, tanh, logistic, softmax)")
def glorot_normal(weight: Tensor) -> None:
    nn.init.xavier_normal_(weight)


@initializers.register("glorot_uniform", "Glorot (Xavier) uniform U(+-sqrt(6/(m+n)))")
def glorot_uniform(weight: Tensor) -> None:
    nn.init.xavier_uniform_(weight)


@initializers.register("he_normal", "He (Kaiming) normal N(0, 2/n) (pairs with ReLU and its variants)")
def he_normal(weight: Tensor) -> None:
    nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")


@initializers.register("he_uniform", "He (Kaiming) uniform U(+-sqrt(6/n))")
def he_uniform(weight: Tensor) -> None:
    nn.init.kaiming_uniform_(weight, mode="fan_in", nonlinearity="relu")


@initializers.register("small_normal", "the old default: small random values near 0, N(0, std^2)")
def small_normal(weight: Tensor, *, std: Annotated[float, Field(gt=0.0)] = 0.01) -> None:
    nn.init.normal_(weight, 0.0, std)


@initializers.register("auto", "the course's pairing with the activation: Glorot for none/tanh/logistic, "
                               "He for ReLU variants, LeCun for SELU (and LeCun's tanh)")
def auto(weight: Tensor, activation: ActivationName) -> None:
    initializers.get(PAIRING[activation]).build(weight)


@initializers.register("pytorch", "leave PyTorch's own initialisation (Kaiming uniform with a = sqrt(5), "
                                  "biases U(+-1/sqrt(n)))")
def pytorch(weight: Tensor) -> None:
    """Nothing to draw: the layers were built with PyTorch's initialisation."""


def initialize(module: nn.Module, name: InitName, activation: ActivationName = "identity") -> None:
    """Draw every Linear/Conv weight in `module` with initialiser `name` and zero its bias.

    `activation` is the one that follows these layers: `auto` picks the initialiser from it.
    """
    if name == "pytorch":
        return
    draw: Callable[[Tensor], None] = (partial(auto, activation=activation) if name == "auto"
                                      else initializers.get(name).build)
    for layer in module.modules():
        if isinstance(layer, LAYERS):
            draw(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
