"""Optimizers by name, with the course's defaults where it gives them and PyTorch's otherwise."""
from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from dlx.registry import optimizers

LearningRate = Annotated[float, Field(gt=0.0, le=100.0)]
WeightDecay = Annotated[float, Field(ge=0.0)]
Beta = Annotated[float, Field(ge=0.0, lt=1.0)]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weights only: biases and normalisation gains are not decayed (one-dimensional tensors)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@optimizers.register("sgd", "minibatch SGD with optional momentum dw(t) = -eps grad + alpha dw(t-1), and Nesterov")
def sgd(model: nn.Module, *, lr: LearningRate = 0.01, momentum: Beta = 0.0, nesterov: bool = False,
        weight_decay: WeightDecay = 0.0) -> torch.optim.Optimizer:
    return torch.optim.SGD(param_groups(model, weight_decay), lr=lr, momentum=momentum, nesterov=nesterov)


@optimizers.register("adam", "Adam (PyTorch defaults)")
def adam(model: nn.Module, *, lr: LearningRate = 1e-3, betas: tuple[Beta, Beta] = (0.9, 0.999),
         eps: Annotated[float, Field(gt=0.0)] = 1e-8, weight_decay: WeightDecay = 0.0) -> torch.optim.Optimizer:
    return torch.optim.Adam(param_groups(model, weight_decay), lr=lr, betas=betas, eps=eps)
