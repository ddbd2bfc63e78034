"""Class visualisation: the input that maximises xi_i(x) - lambda ||x||^2, by gradient ascent from a neutral start."""
from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn

from dlx.explain.base import Explanation, explainer


@explainer("classviz", "gradient ascent on xi_i - lambda ||x||^2 from the mean input: what the class looks like")
def classviz(model: nn.Module, x: Tensor, target: int, *,
             steps: Annotated[int, Field(ge=1, le=100_000)] = 200,
             lr: Annotated[float, Field(gt=0.0)] = 0.1,  # the step along the gradient
             l2: Annotated[float, Field(ge=0.0)] = 0.05) -> Explanation:  # lambda
    # zero is the training mean when the run standardises its inputs: no evidence for any class
    image = torch.zeros_like(x, requires_grad=True)
    for _ in range(steps):
        objective = model(image)[0, target] - l2 * image.pow(2).sum()
        (grad,) = torch.autograd.grad(objective, image)
        with torch.no_grad():
            image += lr * grad
    with torch.no_grad():
        score = float(model(image)[0, target])
    return Explanation(image.detach()[0], "image",
                       {"steps": steps, "lr": lr, "l2": l2, "start": "zeros (the training mean)", "final_logit": score})
