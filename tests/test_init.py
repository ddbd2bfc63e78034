"""Each initialiser draws with the variance of the course's formula; auto pairs it with the activation."""
from __future__ import annotations

import math
import typing

import pytest
import torch
from torch import nn

from dlx.data.base import CLASSIFICATION, DataSpec
from dlx.models.init import PAIRING, InitName, initialize
from dlx.registry import initializers, models

N, M = 400, 600  # fan-in and fan-out of a Linear(400, 600): weight (600, 400), 240k draws
VARIANCE = {
    "lecun_normal": 1 / N, "lecun_uniform": (math.sqrt(3 / N)) ** 2 / 3,
    "glorot_normal": 2 / (M + N), "glorot_uniform": (math.sqrt(6 / (M + N))) ** 2 / 3,
    "he_normal": 2 / N, "he_uniform": (math.sqrt(6 / N)) ** 2 / 3,  # U(-a, a) has variance a^2 / 3
    "small_normal": 0.01**2,
}
BOUND = {"lecun_uniform": math.sqrt(3 / N), "glorot_uniform": math.sqrt(6 / (M + N)), "he_uniform": math.sqrt(6 / N)}


@pytest.mark.parametrize("name", sorted(VARIANCE))
def test_variance_matches_the_formula(name):
    torch.manual_seed(0)
    layer = nn.Linear(N, M)
    initialize(layer, name)
    w = layer.weight.detach()
    assert w.var().item() == pytest.approx(VARIANCE[name], rel=0.02)
    assert abs(w.mean().item()) < 0.01 * math.sqrt(VARIANCE[name])
    assert torch.all(layer.bias == 0)
    if name in BOUND:
        assert w.abs().max().item() <= BOUND[name]
        assert w.abs().max().item() > 0.99 * BOUND[name]


def test_conv_fan_in_counts_the_kernel():
    torch.manual_seed(0)
    conv = nn.Conv2d(32, 64, 5)
    initialize(conv, "he_normal")
    assert conv.weight.var().item() == pytest.approx(2 / (32 * 25), rel=0.03)


@pytest.mark.parametrize("activation, expected", [
    ("identity", "glorot_normal"), ("tanh", "glorot_normal"), ("logistic", "glorot_normal"),
    ("relu", "he_normal"), ("leaky_relu", "he_normal"), ("elu", "he_normal"), ("selu", "lecun_normal"),
])
def test_auto_pairs_the_initialiser_with_the_activation(activation, expected):
    assert PAIRING[activation] == expected
    torch.manual_seed(0)
    layer = nn.Linear(N, M)
    initialize(layer, "auto", activation)
    assert layer.weight.var().item() == pytest.approx(VARIANCE[expected], rel=0.02)


def test_the_config_choices_are_the_registered_initialisers():
    assert sorted(typing.get_args(InitName)) == initializers.names()


def test_pytorch_keeps_pytorch_initialisation():
    torch.manual_seed(0)
    expected = nn.Linear(N, M)
    torch.manual_seed(0)
    layer = nn.Linear(N, M)
    initialize(layer, "pytorch")
    assert torch.equal(layer.weight, expected.weight) and torch.equal(layer.bias, expected.bias)


def test_mlp_pairs_hidden_layers_with_their_activation_and_the_output_with_glorot():
    torch.manual_seed(0)
    entry = models.get("mlp")
    model = entry.build(DataSpec((N,), CLASSIFICATION, num_classes=M),
                        **entry.resolve({"sizes": f"{M}-{N}", "activation": "selu"}, "model"))
    hidden, second, output = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert hidden.weight.var().item() == pytest.approx(1 / N, rel=0.02)  # LeCun for SELU
    assert second.weight.var().item() == pytest.approx(1 / M, rel=0.02)
    assert output.weight.var().item() == pytest.approx(2 / (M + N), rel=0.02)  # Glorot before softmax
