"""The 1-D CNN on sequences: output lengths by padding, the pooling over time, and errors for data it cannot take."""
from __future__ import annotations

import pytest
import torch

from dlx.data.base import CLASSIFICATION, DataSpec
from dlx.errors import DlxError
from dlx.registry import models


def build(in_shape: tuple[int, ...], **settings):
    entry = models.get("conv1d")
    return entry.build(DataSpec(in_shape, CLASSIFICATION, num_classes=3), **entry.resolve(settings, "model"))


@pytest.mark.parametrize("padding, steps", [("valid", 12 - 2 * 4), ("same", 12), ("full", 12 + 2 * 4)])
def test_two_layers_give_the_channels_and_the_padding_s_length(padding, steps):
    model = build((12, 2), channels="8-16", kernel=5, padding=padding)
    x = torch.randn(3, 12, 2)  # (B, T, F)
    assert model.features(x.transpose(1, 2)).shape == (3, 16, steps)
    assert model(x).shape == (3, 3)
    assert model.kernels.shape == (8, 2, 5)  # the first layer's filters: (channels, F, kernel)


@pytest.mark.parametrize("pool, reduce", [("max", torch.amax), ("mean", torch.mean)])
def test_the_head_reads_the_pooled_feature_maps(pool, reduce):
    model = build((10, 1), channels=4, kernel=3, pool=pool).eval()
    x = torch.randn(2, 10, 1)
    maps = model.features(x.transpose(1, 2))  # (B, C, T')
    torch.testing.assert_close(model(x), model.head(reduce(maps, dim=2)))


def test_one_filter_of_1011_finds_the_pattern_anywhere():
    """The notes' neuron by hand: weights (1, -1, 1, 1), threshold between 3 (1011) and 2 (any other window)."""
    model = build((8, 1), channels=1, kernel=4, activation="identity")
    with torch.no_grad():
        model.kernels.copy_(torch.tensor([1.0, -1.0, 1.0, 1.0]).view(1, 1, 4))
        model.features[0].bias.fill_(-2.5)
        streams = torch.tensor([[0, 0, 0, 1, 0, 1, 1, 0], [1, 1, 1, 1, 0, 0, 1, 1]]).float().unsqueeze(-1)
        peaks = model.features(streams.transpose(1, 2)).amax(dim=2).flatten()
    assert peaks.tolist() == [0.5, -0.5]


@pytest.mark.parametrize("in_shape, settings, problem", [
    ((6,), {}, r"needs sequences of shape \(T, F\), but the data has samples of shape \(6,\)"),
    ((1, 8, 8), {}, "needs sequences"),
    ((5, 1), {"channels": "4-4", "kernel": 4}, "2 valid convolutions with kernels of 4 do not fit sequences of 5 steps"),
    ((5, 1), {"channels": ""}, "model.channels: give at least one conv layer"),
    ((5, 1), {"channels": "4-x"}, "model.channels: '4-x' is not a list of layer sizes"),
])
def test_data_or_settings_it_cannot_take_are_one_clear_error(in_shape, settings, problem):
    with pytest.raises(DlxError, match=problem):
        build(in_shape, **settings)


def test_same_padding_keeps_short_sequences():
    assert build((5, 1), channels="4-4", kernel=3, padding="same")(torch.zeros(1, 5, 1)).shape == (1, 3)
