"""Every loss against a value computed by hand; the l1/l2 penalties on weights only, during training only."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dlx import build
from dlx import registry
from dlx.data.base import CLASSIFICATION, DataSpec
from dlx.losses import Penalized, triplet

LN3 = math.log(3.0)
T = torch.tensor

# name -> [(settings, output, target, expected)], each expected value worked out by hand
CASES = {
    "cross_entropy": [({}, T([[LN3, 0.0]]), T([0]), math.log(4 / 3)),  # softmax (3/4, 1/4)
                      ({"label_smoothing": 0.2}, T([[LN3, 0.0]]), T([0]), -(0.9 * math.log(0.75) + 0.1 * math.log(0.25))),
                      ({}, T([[[LN3, 0.0], [0.0, 0.0]]]), T([[0, 1]]), (math.log(4 / 3) + math.log(2)) / 2),  # (B, T, V)
                      ({}, T([[[LN3, 0.0, 0.0], [0.0, 0.0, 0.0]]]), T([[0, 1, 1]]),  # per step, classes second: (B, C, T)
                       (math.log(4 / 3) + 2 * math.log(2)) / 3)],
    "mse": [({}, T([[1.0, 2.0, 3.0]]), T([[0.0, 0.0, 0.0]]), 14 / 3),
            ({"half": True}, T([[1.0, 2.0, 3.0]]), T([[0.0, 0.0, 0.0]]), 7.0)],  # 1/2 (1 + 4 + 9)
    "mae": [({}, T([[1.0, -2.0, 3.0]]), T([[0.0, 0.0, 0.0]]), 2.0)],
    "huber": [({"delta": 1.0}, T([[0.5, 2.0]]), T([[0.0, 0.0]]), (0.5 * 0.25 + (2.0 - 0.5)) / 2)],
    "bce": [({}, T([[0.0]]), T([1]), math.log(2)),  # one logit: p = 1/2
            ({}, T([[0.0, LN3]]), T([1]), -math.log(0.75)),  # two logits: the logit is their difference
            ({}, T([[0.0]]), T([[0.25]]), math.log(2))],  # a float target in [0, 1]
    "nll": [({}, T([[LN3, 0.0]]), T([0]), math.log(4 / 3)),
            ({"inputs": "log_probs"}, T([[math.log(0.75), math.log(0.25)]]), T([1]), math.log(4)),
            ({}, T([[[LN3, 0.0], [0.0, 0.0]]]), T([[0, 1]]), (math.log(4 / 3) + math.log(2)) / 2)],  # (B, T, V)
    # anchors 0 and 1 share class 0; squared distances d01 = 1, d02 = 4, d12 = 5; anchor 2 has no positive.
    # alpha 4: anchor 0 gives 1 - 4 + 4 = 1, anchor 1 gives max(1 - 5 + 4, 0) = 0
    "triplet": [({"alpha": 4.0}, T([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]), T([0, 0, 1]), 0.5)],
}


def test_every_registered_loss_has_a_hand_computed_case():
    assert set(CASES) == set(registry.losses.names())


@pytest.mark.parametrize("name,settings,output,target,expected",
                         [(n, *case) for n, cases in CASES.items() for case in cases],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_loss_matches_the_hand_computed_value(name, settings, output, target, expected):
    entry = registry.losses.get(name)
    loss = entry.build(**entry.resolve(settings, "loss"))
    assert loss(output, target).item() == pytest.approx(expected, rel=1e-5)


def test_triplet_formula_uses_squared_distances():
    anchor, positive, negative = T([[0.0, 0.0]]), T([[1.0, 1.0]]), T([[1.0, 0.0]])
    assert triplet(anchor, positive, negative, 0.5).item() == pytest.approx(2.0 - 1.0 + 0.5)
    assert triplet(anchor, negative, positive, 0.5).item() == 0.0  # positive already closer by more than alpha


def test_bce_refuses_more_than_two_classes():
    from dlx.errors import DlxError

    with pytest.raises(DlxError, match="two classes"):
        registry.losses.get("bce").build()(torch.zeros(2, 3), T([0, 2]))


def linear() -> nn.Linear:
    net = nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.copy_(T([[1.0, -2.0]]))
        net.bias.fill_(5.0)
    return net


def test_penalties_add_l1_and_half_l2_of_the_weights_not_the_bias():
    net, zero = linear(), nn.MSELoss()
    output, target = T([[1.0]]), T([[1.0]])  # no data loss
    assert Penalized(zero, [net.weight], l1=0.1, l2=0.0)(output, target).item() == pytest.approx(0.1 * 3)
    assert Penalized(zero, [net.weight], l1=0.0, l2=0.2)(output, target).item() == pytest.approx(0.5 * 0.2 * 5)
    with torch.no_grad():  # validation and test measure the data loss alone
        assert Penalized(zero, [net.weight], l1=0.1, l2=0.2)(output, target).item() == 0.0


def test_l2_gradient_is_sgd_weight_decay(fast_config):
    config = fast_config("loss.l2=0.5")
    spec = DataSpec((2,), CLASSIFICATION, num_classes=2)
    net = linear()
    loss = build.loss(config, spec, net)
    loss(net(T([[0.0, 0.0]])) * 0.0, T([0])).backward()  # the data loss has no gradient here
    assert torch.allclose(net.weight.grad, 0.5 * net.weight) and net.bias.grad.abs().sum() == 0
    assert not isinstance(build.loss(config, spec), Penalized)  # without a model (evaluation): the data loss
    assert not isinstance(build.loss(fast_config(), spec, net), Penalized)  # l1 = l2 = 0: nothing wrapped
