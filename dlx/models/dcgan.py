"""DCGAN (Radford, Metz and Chintala 2016) sized to the data's images, for the `gan` objective.

The generator projects z to a small feature map and doubles its side with 4x4 transposed convolutions of stride 2
until it is the image's; the discriminator mirrors it with strided 4x4 convolutions (no pooling) down to that small
map and one logit. As in the paper: batch norm after every layer but the generator's output and the discriminator's
input, ReLU in the generator and leaky ReLU (0.2) in the discriminator, weights drawn from N(0, 0.02), batch-norm
gains from N(1, 0.02). The image's side is halved while it stays even and at least 4 (DCGAN's 4x4 start):
8x8 digits start from 4x4, 28x28 MNIST from 7x7, 32x32 CIFAR-10 from 4x4.

The generator's output is DCGAN's tanh for data in [-1, 1], or its twin sigmoid(2a) = (1 + tanh a) / 2 for dlx's
pixels in [0, 1] (data.standardize: false): a bounded output cannot draw standardised data, which `linear` can.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field
from torch import nn

from dlx.data.base import DataSpec
from dlx.errors import DlxError
from dlx.models.checks import image_shape
from dlx.models.gan import AdversarialPair
from dlx.registry import models

OUTPUTS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "linear": nn.Identity}
OUTPUT_RANGE = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "linear": (-float("inf"), float("inf"))}
SMALLEST_MAP = 4  # DCGAN's generator starts from 4x4


@dataclass
class DCGANConfig:
    noise: Annotated[int, Field(ge=1, le=4096)] = 100  # width of z (DCGAN's 100)
    width: Annotated[int, Field(ge=1, le=1024)] = 64  # channels next to the image in both networks, doubled per halving
    output: Literal["sigmoid", "tanh", "linear"] = "sigmoid"  # the generator's last activation (see above)
    slope: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2  # leaky ReLU slope of the discriminator


def halvings(height: int, width: int) -> int:
    """How often both sides halve while they stay even and at least SMALLEST_MAP: the up- and down-sampling steps."""
    steps = 0
    while all(side % 2 == 0 and side // 2 >= SMALLEST_MAP for side in (height >> steps, width >> steps)):
        steps += 1
    return steps


@models.register("dcgan", "DCGAN sized to the images: transposed-conv generator, strided-conv discriminator, batch "
                 "norm, N(0, 0.02) weights; for the gan objective", config=DCGANConfig, inputs="image", objective="gan")
class DCGAN(AdversarialPair):
    def __init__(self, spec: DataSpec, config: DCGANConfig):
        super().__init__()
        channels, height, width = image_shape(spec, "dcgan")
        steps = halvings(height, width)
        if steps == 0:
            raise DlxError(f"model 'dcgan' halves the image's sides down to {SMALLEST_MAP} pixels or more, and a "
                           f"{height}x{width} image cannot halve once; use images such as 8x8, 28x28 or 32x32, "
                           f"or mlp_gan")
        self.noise, self.output = config.noise, config.output
        base = (height >> steps, width >> steps)  # (h, w) of the smallest map
        maps = [config.width * 2**i for i in reversed(range(steps))]  # channels from the smallest map up
        generator: list[nn.Module] = [nn.Unflatten(1, (config.noise, 1, 1)),
                                      nn.ConvTranspose2d(config.noise, maps[0], base, bias=False),  # project: (B, m0, h, w)
                                      nn.BatchNorm2d(maps[0]), nn.ReLU()]
        for wide, narrow in zip(maps, maps[1:]):
            generator += [nn.ConvTranspose2d(wide, narrow, 4, 2, 1, bias=False), nn.BatchNorm2d(narrow), nn.ReLU()]
        generator += [nn.ConvTranspose2d(maps[-1], channels, 4, 2, 1), OUTPUTS[config.output]()]  # (B, C, H, W)
        self.generator = nn.Sequential(*generator)
        discriminator: list[nn.Module] = [nn.Conv2d(channels, maps[-1], 4, 2, 1), nn.LeakyReLU(config.slope)]
        for narrow, wide in zip(maps[::-1], maps[::-1][1:]):
            discriminator += [nn.Conv2d(narrow, wide, 4, 2, 1, bias=False), nn.BatchNorm2d(wide),
                              nn.LeakyReLU(config.slope)]
        discriminator += [nn.Conv2d(maps[0], 1, base), nn.Flatten()]  # the whole smallest map -> (B, 1)
        self.discriminator = nn.Sequential(*discriminator)
        self.apply(dcgan_init)

    @property
    def output_range(self) -> tuple[float, float]:
        """The values the generator can draw: the objective refuses data outside them."""
        return OUTPUT_RANGE[self.output]


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: every (transposed) convolution's weights from N(0, 0.02), batch-norm gains from
    N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
