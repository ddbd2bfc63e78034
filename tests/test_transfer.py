"""torchvision models for transfer learning: cached pretrained weights, a clear error without them, freezing."""
from __future__ import annotations

import pytest
import torch
import torchvision

from dlx.data.base import CLASSIFICATION, DataSpec
from dlx.errors import DlxError
from dlx.models.transfer import weights_path
from dlx.registry import models

SPEC = DataSpec((3, 32, 32), CLASSIFICATION, num_classes=4)
ENTRY = models.get("tv_mobilenet_v3_small")


def build(**settings):
    return ENTRY.build(SPEC, **ENTRY.resolve(settings, "model"))


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def test_pretrained_without_cached_weights_names_the_file(torch_home):
    """This machine is offline, so the download fails: the error says which file goes where."""
    expected = torch_home / "hub" / "checkpoints" / "mobilenet_v3_small-047dcff4.pth"
    assert weights_path(torchvision.models.MobileNet_V3_Small_Weights.DEFAULT) == expected
    with pytest.raises(DlxError, match=f"put https://\\S+ at {expected}"):
        build(pretrained=True)


def test_pretrained_loads_the_cached_weights_and_sizes_a_new_head(torch_home):
    torch.manual_seed(1)
    imagenet = torchvision.models.mobilenet_v3_small()
    path = weights_path(torchvision.models.MobileNet_V3_Small_Weights.DEFAULT)
    path.parent.mkdir(parents=True)
    torch.save(imagenet.state_dict(), path)
    model = build(pretrained=True, freeze="trunk")
    assert torch.equal(model.net.features[0][0].weight, imagenet.features[0][0].weight)
    assert model.head_name == "classifier.3" and model.net.classifier[3].out_features == 4
    trainable = [n for n, p in model.net.named_parameters() if p.requires_grad]
    assert trainable == ["classifier.3.weight", "classifier.3.bias"]
    model.train()
    assert not any(m.training for m in model.net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_a_corrupt_weights_file_is_a_clear_error(torch_home):
    path = weights_path(torchvision.models.MobileNet_V3_Small_Weights.DEFAULT)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DlxError, match="not a valid weights file"):
        build(pretrained=True)


def test_freeze_by_module_prefix():
    model = build(freeze=["features.0", "features.1"])
    frozen = {n.split(".")[1] for n, p in model.net.named_parameters() if not p.requires_grad}
    assert frozen == {"0", "1"}
    with pytest.raises(DlxError, match="'layer9' names no module.*features, avgpool, classifier"):
        build(freeze=["layer9"])


def test_grey_images_are_repeated_to_rgb():
    model = ENTRY.build(DataSpec((1, 32, 32), CLASSIFICATION, num_classes=3))
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 3)
