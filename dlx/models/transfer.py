"""torchvision's ImageNet models by name, for transfer learning: a (pretrained) trunk and a new head.

`pretrained: true` loads torchvision's ImageNet weights from its cache ($TORCH_HOME/hub/checkpoints,
by default ~/.cache/torch/hub/checkpoints), downloading them once if the network allows. The last
linear layer is replaced by one sized to the dataset; `freeze` keeps the trunk (or chosen modules)
fixed. Grey images are repeated to three channels so the pretrained first layer applies.
"""
from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.error import URLError

import torch
from torch import nn

from dlx.data.base import DataSpec
from dlx.errors import DlxError
from dlx.models.checks import classifier_outputs, feature_shape, image_shape
from dlx.registry import models

if TYPE_CHECKING:  # torchvision itself is imported when such a model is built: listing the models needs none of it
    import torchvision

ARCHS = {
    "resnet18": "ResNet-18", "resnet50": "ResNet-50", "vgg16": "VGG-16",
    "mobilenet_v3_small": "MobileNetV3-small", "efficientnet_b0": "EfficientNet-B0",
}


@dataclass
class TorchvisionConfig:
    pretrained: bool = False  # torchvision's ImageNet weights for the trunk; the head always starts fresh
    # trunk: train the new head only; none: fine-tune everything; or module prefixes, e.g. [conv1, layer1]
    freeze: Literal["trunk", "none"] | list[str] = "none"


def weights_path(weights: torchvision.models.WeightsEnum) -> Path:
    """Where torchvision keeps these weights: $TORCH_HOME/hub/checkpoints/<file name of the URL>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def pretrained_state(arch: str) -> dict[str, torch.Tensor]:
    import torchvision

    weights = torchvision.models.get_model_weights(arch).DEFAULT
    path = weights_path(weights)
    try:
        return weights.get_state_dict(progress=False, map_location="cpu", weights_only=True)
    except (URLError, ConnectionError, TimeoutError):
        raise DlxError(f"model.pretrained: the ImageNet weights of {arch} are not in torchvision's cache and cannot be "
                       f"downloaded here; put {weights.url} at {path} (or set TORCH_HOME), or set "
                       f"model.pretrained=false") from None
    except (RuntimeError, pickle.UnpicklingError, EOFError) as e:
        raise DlxError(f"model.pretrained: {path} is not a valid weights file ({str(e).splitlines()[0]}); "
                       f"delete it and download {weights.url} again") from None


def replace_head(net: nn.Module, outputs: int) -> str:
    """Swap the last linear layer for a fresh one with `outputs` units; returns its name, e.g. 'fc'."""
    name, last = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)][-1]
    parent, _, attr = name.rpartition(".")
    setattr(net.get_submodule(parent), attr, nn.Linear(last.in_features, outputs))
    return name


class TorchvisionNet(nn.Module):
    def __init__(self, spec: DataSpec, config: TorchvisionConfig, arch: str):
        super().__init__()
        name = f"tv_{arch}"
        channels = image_shape(spec, name)[0]
        if channels not in (1, 3):
            raise DlxError(f"model '{name}' takes grey or RGB images, but these have {channels} channels")
        self.grey = channels == 1
        import torchvision

        self.net = torchvision.models.get_model(arch, weights=None)
        if config.pretrained:
            self.net.load_state_dict(pretrained_state(arch))
        self.head_name = replace_head(self.net, classifier_outputs(spec, name))
        feature_shape(self.net, (3, *spec.in_shape[1:]), name, "32x32")
        self._freeze(config.freeze)

    def _freeze(self, freeze: str | list[str]) -> None:
        if freeze == "none":
            return
        params = dict(self.net.named_parameters())
        if freeze == "trunk":
            frozen = [n for n in params if not n.startswith(self.head_name + ".")]
        else:
            frozen = []
            for prefix in freeze:
                hits = [n for n in params if n == prefix or n.startswith(prefix + ".")]
                if not hits:
                    top = ", ".join(n for n, _ in self.net.named_children())
                    raise DlxError(f"model.freeze: '{prefix}' names no module of this net (its top-level modules: {top})")
                frozen += hits
        for n in frozen:
            params[n].requires_grad_(False)

    def train(self, mode: bool = True) -> TorchvisionNet:
        """Batch norms whose parameters are frozen stay in eval mode: their ImageNet statistics are part of the trunk."""
        super().train(mode)
        for module in self.net.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and not any(
                    p.requires_grad for p in module.parameters()):
                module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grey:
            x = x.expand(-1, 3, -1, -1)  # (B, 1, H, W) -> (B, 3, H, W), a view
        return self.net(x)  # (B, 3, H, W) -> (B, classes)


for _arch, _title in ARCHS.items():
    models.register(f"tv_{_arch}", f"torchvision's {_title} (ImageNet layout); pretrained: true for transfer "
                                   f"learning, freeze: trunk, none or module prefixes",
                    config=TorchvisionConfig, inputs="image")(partial(TorchvisionNet, arch=_arch))
