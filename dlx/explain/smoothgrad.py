"""SmoothGrad (COURSE.md): add noise to the input several times and average the saliency maps, each of them the
largest |d xi_i / d x| over a pixel's channels, as the saliency method draws it. The channel maximum comes first
and the average second: averaging the gradients first would let the channels of different noisy copies mix.
A sequence's map has a value per step and feature, so there is no maximum to take."""
from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn

from dlx.explain.base import Explanation, explainer, gradients_through, map_kind


@explainer("smoothgrad", "saliency maps of noisy copies of the input, averaged (seeded)",
                     inputs=("image", "sequence"))
def smoothgrad(model: nn.Module, x: Tensor, target: int, *,
               noise: Annotated[float, Field(ge=0.0)] = 0.15,  # noise std as a fraction of the input's value range
               samples: Annotated[int, Field(ge=1, le=100_000)] = 50,
               batch_size: Annotated[int, Field(ge=1)] = 50,  # noisy copies per forward/backward pass
               seed: int = 0) -> Explanation:
    from captum.attr import Saliency  # where it is used: captum takes long to import

    image = x.dim() == 4
    stdev = noise * float(x.max() - x.min())
    generator = torch.Generator(device=x.device).manual_seed(seed)  # its own stream: the global one is left alone
    saliency = Saliency(model)
    total = torch.zeros(x.shape[-2:], device=x.device)  # (H, W) for an image, (T, F) for a sequence
    for start in range(0, samples, batch_size):
        count = min(batch_size, samples - start)
        noisy = x.detach() + stdev * torch.randn((count, *x.shape[1:]), generator=generator, device=x.device)
        with gradients_through(model):
            gradients = saliency.attribute(noisy.requires_grad_(True), target=target, abs=True).detach()
        total += (gradients.amax(dim=1) if image else gradients).sum(dim=0)  # each copy's map (as per_pixel), summed
    params = {"noise": noise, "stdev": stdev, "samples": samples, "batch_size": batch_size, "seed": seed}
    if image:
        params["channels"] = "each noisy copy's largest |gradient| over channels, then the average"
    return Explanation(total / samples, map_kind(x), params)
