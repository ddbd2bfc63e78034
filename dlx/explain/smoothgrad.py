"""SmoothGrad: the saliency maps of several noisy copies of the input, averaged."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field
from torch import Tensor, nn

from dlx.explain.base import Explanation, differentiable, per_pixel, require_image, seeded
from dlx.registry import explainers


@explainers.register("smoothgrad", "saliency averaged over noisy copies of the input (seeded)")
def smoothgrad(model: nn.Module, x: Tensor, target: int, *,
               noise: Annotated[float, Field(ge=0.0)] = 0.15,  # noise std as a fraction of the input's value range
               samples: Annotated[int, Field(ge=1, le=100_000)] = 50,
               batch_size: Annotated[int, Field(ge=1)] = 50,  # noisy copies per forward/backward pass
               seed: int = 0) -> Explanation:
    from captum.attr import NoiseTunnel, Saliency

    require_image(x, "smoothgrad")
    stdev = noise * float(x.max() - x.min())
    with seeded(seed):
        attribution = NoiseTunnel(Saliency(model)).attribute(
            differentiable(x), target=target, abs=True, nt_type="smoothgrad", nt_samples=samples,
            nt_samples_batch_size=batch_size, stdevs=stdev)
    return Explanation(per_pixel(attribution), "map",
                       {"noise": noise, "stdev": stdev, "samples": samples, "batch_size": batch_size, "seed": seed})
