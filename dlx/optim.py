"""Optimizers by name, with the course's defaults where it gives them and PyTorch's otherwise.

Weight decay applies to weights only: biases and normalisation parameters sit in a second group
without it (see param_groups). Where PyTorch has a fused kernel for an optimizer on the parameters'
device (SGD, Adam, AdamW, Adagrad on CPU and CUDA), it is used: one kernel per parameter group
instead of a handful of operations per parameter, a quarter off a small model's step on a CPU.
"""
from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import nn

from dlx.registry import optimizers

LearningRate = Annotated[float, Field(gt=0.0, le=100.0)]
WeightDecay = Annotated[float, Field(ge=0.0)]
Beta = Annotated[float, Field(ge=0.0, lt=1.0)]
Epsilon = Annotated[float, Field(gt=0.0)]
Betas = tuple[Beta, Beta]


def split_weights(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(weights, others) of the trainable parameters: matrices and kernels are weights; biases and
    normalisation gains (one-dimensional) are not, and get neither weight decay nor penalties."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [p for p in params if p.dim() > 1], [p for p in params if p.dim() <= 1]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weights with the decay and the others without; one group when there is no decay (a group costs a
    fused kernel or a loop over its parameters every step)."""
    weights, others = split_weights(model)
    if not weight_decay:
        return [{"params": weights + others, "weight_decay": 0.0}]
    return [{"params": weights, "weight_decay": weight_decay}, {"params": others, "weight_decay": 0.0}]


FUSED_DEVICES = ("cpu", "cuda")


def fused(model: nn.Module) -> bool:
    """Whether the fused kernels apply: every trainable parameter a floating-point tensor on a device they
    support."""
    return all(p.device.type in FUSED_DEVICES and p.is_floating_point() for p in model.parameters() if p.requires_grad)


class NotesMomentumSGD(torch.optim.Optimizer):
    """SGD with momentum as the notes write it: dw(t) = -eps(t) g + alpha dw(t-1), w <- w + dw(t), where g is the
    gradient (plus weight_decay * w). The step dw is what is remembered, so a new rate eps(t) scales only the new
    gradient. PyTorch's SGD remembers v(t) = alpha v(t-1) + g and steps w <- w - eps(t) v(t): a new rate rescales the
    remembered steps too, dw(t) = -eps(t) g + alpha (eps(t) / eps(t-1)) dw(t-1). Both agree at a constant rate.
    Nesterov looks ahead by the new step: w <- w + alpha dw(t) - eps(t) g (PyTorch's Nesterov at a constant rate)."""

    def __init__(self, params, lr: float, momentum: float, nesterov: bool, weight_decay: float):
        super().__init__(params, {"lr": lr, "momentum": momentum, "nesterov": nesterov, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, alpha = group["lr"], group["momentum"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad.add(param, alpha=group["weight_decay"]) if group["weight_decay"] else param.grad
                state = self.state[param]
                if "step_delta" not in state:
                    state["step_delta"] = torch.zeros_like(param)
                delta = state["step_delta"].mul_(alpha).add_(grad, alpha=-lr)  # dw(t)
                param.add_(delta.mul(alpha).add_(grad, alpha=-lr) if group["nesterov"] else delta)


@optimizers.register("sgd", "minibatch SGD; momentum in PyTorch's form v = alpha v + grad, w -= eps(t) v, or with "
                            "momentum_form: notes as the notes write it, dw(t) = -eps(t) grad + alpha dw(t-1) (the "
                            "two differ under a schedule); and Nesterov")
def sgd(model: nn.Module, *, lr: LearningRate = 0.01, momentum: Beta = 0.0, nesterov: bool = False,
        weight_decay: WeightDecay = 0.0,
        momentum_form: Literal["pytorch", "notes"] = "pytorch") -> torch.optim.Optimizer:
    """momentum_form: pytorch (fused kernels) or notes (the step dw is remembered, so eps(t) scales only the new
    gradient: see NotesMomentumSGD)."""
    if momentum_form == "notes":
        return NotesMomentumSGD(param_groups(model, weight_decay), lr, momentum, nesterov, weight_decay)
    optimizer = torch.optim.SGD(param_groups(model, weight_decay), lr=lr, momentum=momentum, nesterov=nesterov,
                                fused=fused(model))
    if momentum and optimizer.defaults["fused"]:
        # fused SGD allocates its momentum buffers uninitialised at its first step and fills them only if that step
        # is taken: when fp16's gradient scaler skips it (an overflow, usual at the first scale), the next step reads
        # garbage. Zero buffers from the start change nothing else: alpha * 0 + grad is the first step's grad exactly.
        for group in optimizer.param_groups:
            for param in group["params"]:
                optimizer.state[param]["momentum_buffer"] = torch.zeros_like(param)
    return optimizer


@optimizers.register("adagrad", "AdaGrad: per-weight rates scaled by the accumulated squared gradients "
                                "(course: eta 0.01, delta 1e-8)")
def adagrad(model: nn.Module, *, lr: LearningRate = 0.01, eps: Epsilon = 1e-8,
            weight_decay: WeightDecay = 0.0) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(param_groups(model, weight_decay), lr=lr, eps=eps, fused=fused(model))


@optimizers.register("rmsprop", "RMSProp: rates scaled by a running mean of squared gradients "
                                "(course: rho 0.9, eta 0.001, delta 1e-8)")
def rmsprop(model: nn.Module, *, lr: LearningRate = 1e-3, rho: Beta = 0.9, eps: Epsilon = 1e-8,
            momentum: Beta = 0.0, weight_decay: WeightDecay = 0.0) -> torch.optim.Optimizer:
    """rho is the course's decay of the running mean (PyTorch calls it alpha)."""
    return torch.optim.RMSprop(param_groups(model, weight_decay), lr=lr, alpha=rho, eps=eps, momentum=momentum)


@optimizers.register("adadelta", "AdaDelta: rates from running means of squared gradients and updates (PyTorch defaults)")
def adadelta(model: nn.Module, *, lr: LearningRate = 1.0, rho: Beta = 0.9, eps: Epsilon = 1e-6,
             weight_decay: WeightDecay = 0.0) -> torch.optim.Optimizer:
    return torch.optim.Adadelta(param_groups(model, weight_decay), lr=lr, rho=rho, eps=eps)


def _adam_family(name: str, description: str, cls: type[torch.optim.Optimizer], default_lr: float,
                 default_decay: float = 0.0, has_fused: bool = False) -> None:
    """Register one of the Adam variants, which share their settings and differ in defaults."""

    @optimizers.register(name, description)
    def build(model: nn.Module, *, lr: LearningRate = default_lr, betas: Betas = (0.9, 0.999), eps: Epsilon = 1e-8,
              weight_decay: WeightDecay = default_decay) -> torch.optim.Optimizer:
        kernels = {"fused": fused(model)} if has_fused else {}
        return cls(param_groups(model, weight_decay), lr=lr, betas=betas, eps=eps, **kernels)


_adam_family("adam", "Adam (PyTorch defaults)", torch.optim.Adam, 1e-3, has_fused=True)
_adam_family("adamw", "AdamW: Adam with decoupled weight decay (PyTorch defaults, decay 0.01)", torch.optim.AdamW,
             1e-3, default_decay=0.01, has_fused=True)
_adam_family("nadam", "NAdam: Adam with Nesterov momentum (PyTorch defaults)", torch.optim.NAdam, 2e-3)
_adam_family("radam", "RAdam: Adam with a rectified warm-up of the adaptive rate (PyTorch defaults)",
             torch.optim.RAdam, 1e-3)
