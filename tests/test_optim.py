"""Optimizers: the course's defaults, every entry builds and steps, no weight decay on biases and norm gains."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from dlx import registry


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 2))


def make(name: str, net: nn.Module, **settings) -> torch.optim.Optimizer:
    entry = registry.optimizers.get(name)
    return entry.build(net, **entry.resolve(settings, "optimizer"))


def test_course_defaults_for_adagrad_and_rmsprop():
    adagrad = make("adagrad", small_net()).param_groups[0]
    assert (adagrad["lr"], adagrad["eps"]) == (0.01, 1e-8)  # eta, delta
    rmsprop = make("rmsprop", small_net()).param_groups[0]
    assert (rmsprop["lr"], rmsprop["alpha"], rmsprop["eps"]) == (1e-3, 0.9, 1e-8)  # eta, rho (torch: alpha), delta


def test_pytorch_defaults_elsewhere():
    assert make("adamw", small_net()).param_groups[0]["weight_decay"] == 0.01
    assert make("adadelta", small_net()).param_groups[0]["lr"] == 1.0
    assert make("nadam", small_net()).param_groups[0]["lr"] == 2e-3
    sgd = make("sgd", small_net(), momentum=0.9, nesterov=True).param_groups[0]
    assert sgd["momentum"] == 0.9 and sgd["nesterov"]


@pytest.mark.parametrize("name", registry.optimizers.names())
def test_every_optimizer_takes_a_step_and_spares_biases_and_norm_gains(name):
    net = small_net()
    opt = make(name, net, weight_decay=0.1)
    weights = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.1 for p in g["params"]}
    spared = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.0 for p in g["params"]}
    assert weights == {id(net[0].weight), id(net[3].weight)}
    assert spared == {id(net[0].bias), id(net[2].weight), id(net[2].bias), id(net[3].bias)}
    before = [p.detach().clone() for p in net.parameters()]
    net(torch.randn(8, 3)).pow(2).mean().backward()
    opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, net.parameters()))


def test_decay_shrinks_weights_but_not_biases():
    net = nn.Linear(2, 1)
    opt = make("sgd", net, lr=0.1, weight_decay=0.5)
    weight, bias = net.weight.detach().clone(), net.bias.detach().clone()
    for p in net.parameters():
        p.grad = torch.zeros_like(p)  # no data gradient: only the decay acts
    opt.step()
    assert torch.allclose(net.weight, weight * (1 - 0.1 * 0.5)) and torch.equal(net.bias, bias)


@pytest.mark.parametrize("name", registry.optimizers.names())
def test_without_decay_every_parameter_is_in_one_group(name):
    net = small_net()
    (group,) = make(name, net, weight_decay=0.0).param_groups
    assert {id(p) for p in group["params"]} == {id(p) for p in net.parameters()}


FUSED = {"sgd", "adam", "adamw", "adagrad"}  # PyTorch's fused kernels on CPU and CUDA


@pytest.mark.parametrize("name", registry.optimizers.names())
def test_optimizers_with_a_fused_kernel_use_it_and_step_as_the_plain_one_does(name, monkeypatch, device):
    from dlx import optim

    net, plain_net = small_net().to(device), small_net().to(device)
    opt = make(name, net, weight_decay=0.1)
    assert bool(opt.defaults.get("fused")) == (name in FUSED)
    monkeypatch.setattr(optim, "FUSED_DEVICES", ())  # as on a device without fused kernels
    plain = make(name, plain_net, weight_decay=0.1)
    assert not plain.defaults.get("fused")
    for model, optimizer in ((net, opt), (plain_net, plain)):
        for _ in range(3):
            optimizer.zero_grad()
            model(torch.randn(8, 3, generator=torch.Generator().manual_seed(1)).to(device)).pow(2).mean().backward()
            optimizer.step()
    for fused_p, plain_p in zip(net.parameters(), plain_net.parameters()):
        torch.testing.assert_close(fused_p, plain_p)  # the same update, to rounding



def _sgd_steps(form: str, rates: list[float], nesterov: bool = False) -> list[torch.Tensor]:
    """The weights of w -> (w^2)/2 (gradient w) after each step of sgd with momentum 0.9 at the given rates."""
    w = nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = make("sgd", nn.ParameterList([w]), lr=rates[0], momentum=0.9, nesterov=nesterov, momentum_form=form)
    seen = []
    for rate in rates:
        opt.param_groups[0]["lr"] = rate
        w.grad = w.detach().clone()
        opt.step()
        seen.append(w.detach().clone())
    return seen


@pytest.mark.parametrize("nesterov", [False, True])
def test_the_two_momentum_forms_agree_at_a_constant_rate(nesterov):
    notes, pytorch = _sgd_steps("notes", [0.1] * 5, nesterov), _sgd_steps("pytorch", [0.1] * 5, nesterov)
    assert all(torch.allclose(a, b, rtol=1e-12) for a, b in zip(notes, pytorch))


def test_under_a_schedule_the_notes_form_remembers_the_step_and_pytorch_the_gradient_sum():
    rates, alpha = [0.1, 0.05], 0.9
    w0 = 1.0
    dw1 = -rates[0] * w0  # dw(1) = -eps(1) g, both forms
    w1 = w0 + dw1
    notes = w1 + (-rates[1] * w1 + alpha * dw1)  # dw(2) = -eps(2) g + alpha dw(1)
    pytorch = w1 - rates[1] * (w1 + alpha * w0)  # v(2) = alpha v(1) + g, v(1) = g(1) = w0; w -= eps(2) v(2)
    assert _sgd_steps("notes", rates)[1].item() == pytest.approx(notes, rel=1e-12)
    assert _sgd_steps("pytorch", rates)[1].item() == pytest.approx(pytorch, rel=1e-12)
    assert notes != pytest.approx(pytorch)  # they differ by alpha * dw(1) * (1 - eps(2) / eps(1))
    assert notes - pytorch == pytest.approx(alpha * dw1 * (1 - rates[1] / rates[0]), rel=1e-12)
