"""SmoothGrad (COURSE.md): add noise to the input several times and average the saliency maps, each of them the
largest |d xi_i / d x| over a pixel's channels, as the saliency method draws it. The channel maximum comes first
and the average second: averaging the gradients first would let the channels of different noisy copies mix."""
from __future__ import annotations

from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn

from dlx.explain.base import Explanation, require_image
from dlx.registry import explainers


@explainers.register("smoothgrad", "saliency maps of noisy copies of the input, averaged (seeded)")
def smoothgrad(model: nn.Module, x: Tensor, target: int, *,
               noise: Annotated[float, Field(ge=0.0)] = 0.15,  # noise std as a fraction of the input's value range
               samples: Annotated[int, Field(ge=1, le=100_000)] = 50,
               batch_size: Annotated[int, Field(ge=1)] = 50,  # noisy copies per forward/backward pass
               seed: int = 0) -> Explanation:
    from captum.attr import Saliency  # where it is used: captum takes long to import

    require_image(x, "smoothgrad")
    stdev = noise * float(x.max() - x.min())
    generator = torch.Generator(device=x.device).manual_seed(seed)  # its own stream: the global one is left alone
    saliency, total = Saliency(model), torch.zeros(x.shape[-2:], device=x.device)
    for start in range(0, samples, batch_size):
        count = min(batch_size, samples - start)
        noisy = x.detach() + stdev * torch.randn((count, *x.shape[1:]), generator=generator, device=x.device)
        gradients = saliency.attribute(noisy.requires_grad_(True), target=target, abs=True)  # (b, C, H, W)
        total += gradients.detach().amax(dim=1).sum(dim=0)  # each copy's saliency map (as per_pixel), summed
    return Explanation(total / samples, "map",
                       {"noise": noise, "stdev": stdev, "samples": samples, "batch_size": batch_size, "seed": seed,
                        "channels": "each noisy copy's largest |gradient| over channels, then the average"})
