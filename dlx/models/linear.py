"""Single neurons: the perceptron and ADALINE (linear regression), xi = w0 + sum_i w_i x_i."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from dlx.data.base import CLASSIFICATION, DataSpec
from dlx.errors import DlxError
from dlx.models.init import InitName, initialize
from dlx.models.checks import classifier_outputs
from dlx.registry import models


@dataclass
class PerceptronConfig:
    init: InitName = "small_normal"  # the old default: small random weights near 0


@models.register("perceptron", "one neuron with a unit-step output (binary classification); trained as a "
                               "logistic neuron", config=PerceptronConfig, inputs="any")
class Perceptron(nn.Module):
    """Rosenblatt's perceptron: y = 1 if xi >= 0 else 0 (the course's unit step is 1 at xi = 0).

    The unit step has no useful gradient, so the neuron is trained as a logistic neuron: forward returns
    the two logits (0, xi), for which softmax cross-entropy is exactly the binary cross-entropy of
    sigmoid(xi). The predicted class, the larger logit, is then the unit step of xi; `decide` gives it. (At
    xi = 0 exactly the two logits tie and argmax takes class 0; `dlx evaluate`, which answers class 1 when
    p(class 1) = sigmoid(xi) reaches 0.5, agrees with the step there too.)
    """

    def __init__(self, spec: DataSpec, config: PerceptronConfig):
        super().__init__()
        if spec.task != CLASSIFICATION or spec.num_classes != 2:
            raise DlxError(f"model 'perceptron' separates two classes, but this is {spec.task} data"
                           + (f" with {spec.num_classes} classes" if spec.task == CLASSIFICATION else "")
                           + "; use adaline (linear) or mlp")
        self.neuron = nn.Linear(math.prod(spec.in_shape), 1)
        initialize(self.neuron, config.init, "logistic")

    def potential(self, x: torch.Tensor) -> torch.Tensor:
        return self.neuron(x.flatten(1))  # (B, F) -> (B, 1): the inner potential xi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xi = self.potential(x)
        return torch.cat([torch.zeros_like(xi), xi], dim=1)  # (B, 2): the logits of classes 0 and 1

    def decide(self, x: torch.Tensor) -> torch.Tensor:
        """The perceptron's output: the unit step of xi, as class indices (B,)."""
        return (self.potential(x).squeeze(1) >= 0).long()


@dataclass
class AdalineConfig:
    init: InitName = "glorot_normal"


@models.register("adaline", "ADALINE / linear regression: one linear layer, identity output "
                            "(on classes: logistic regression)", aliases=("linear_regression",),
                 config=AdalineConfig, inputs="any")
class Adaline(nn.Module):
    def __init__(self, spec: DataSpec, config: AdalineConfig):
        super().__init__()
        self.linear = nn.Linear(math.prod(spec.in_shape), classifier_outputs(spec, "adaline"))
        initialize(self.linear, config.init, "identity")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1))  # (B, *in_shape) -> (B, num_outputs)
