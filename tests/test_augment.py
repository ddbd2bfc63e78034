"""Augmentation: a different draw per sample, reproducible from (seed, step), shapes kept, exact pixel shifts."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dlx.data.augment import Augment, augmenter
from dlx.data.base import CLASSIFICATION, DataSpec, Standardizer
from dlx.errors import DlxError

CPU = torch.device("cpu")
IMAGES = DataSpec((3, 9, 11), CLASSIFICATION, num_classes=2)


def batch(n: int = 64) -> torch.Tensor:
    """n copies of one asymmetric image: any difference between outputs comes from the augmentation."""
    return torch.arange(3 * 9 * 11, dtype=torch.float32).reshape(1, 3, 9, 11).repeat(n, 1, 1, 1) / 300


def make(seed: int = 0, standardizer=None, **settings):
    return augmenter(Augment(**settings), IMAGES, seed, CPU, standardizer)


def shifted(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """x moved by whole pixels, the edge repeated into the gap."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    h, w = x.shape[-2:]
    return padded[..., 1 - dy : 1 - dy + h, 1 - dx : 1 - dx + w]


ALL_ON = dict(shift=2, hflip=True, vflip=True, crop=0.8, rotate=15, brightness=0.2, contrast=0.2, saturation=0.2)


@pytest.mark.parametrize("settings", [dict(shift=1), dict(hflip=True), dict(crop=0.7), dict(rotate=20),
                                      dict(brightness=0.3), dict(contrast=0.3), dict(saturation=0.3), ALL_ON],
                         ids=lambda s: "+".join(s))
def test_each_sample_gets_its_own_draw_and_shapes_are_kept(settings):
    x = batch()
    out = make(**settings)(x, step=0)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    distinct = torch.unique(out.flatten(1), dim=0)
    assert len(distinct) > 1  # not one draw for the whole batch
    assert torch.isfinite(out).all()


def test_draws_are_fixed_by_seed_and_step():
    x = batch()
    a = make(**ALL_ON)(x, step=7)
    assert torch.equal(a, make(**ALL_ON)(x, step=7))  # a resumed run redraws exactly this
    assert not torch.equal(a, make(**ALL_ON)(x, step=8))
    assert not torch.equal(a, make(seed=1, **ALL_ON)(x, step=7))


def test_a_shift_moves_by_whole_pixels_within_k():
    x = batch(32)
    out = make(shift=1)(x, step=3)
    candidates = [shifted(x[:1], dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    for image in out:
        assert any(torch.equal(image, c[0]) for c in candidates)  # exact values: nearest sampling on pixel centres


def test_flips_mirror_exactly_and_about_half_the_time():
    x = batch(200)
    out = make(hflip=True)(x, step=0)
    mirrored = torch.tensor([torch.equal(o, x[0].flip(-1)) for o in out])
    same = torch.tensor([torch.equal(o, x[0]) for o in out])
    assert (mirrored | same).all() and 60 < mirrored.sum() < 140


def test_colour_jitter_acts_on_original_pixel_values_of_standardised_batches():
    x = batch(16)
    std = Standardizer(torch.full((1, 3, 1, 1), 0.5), torch.full((1, 3, 1, 1), 0.25))
    out = make(standardizer=std, brightness=0.3)(std(x), step=0)
    factor = (std.std * out + std.mean) / x  # in pixel values, each image is scaled by one factor
    per_image = factor.flatten(1)[:, 1:]  # skip the zero pixel
    assert torch.allclose(per_image, per_image[:, :1], atol=1e-4)
    assert (per_image[:, 0] >= 0.7 - 1e-4).all() and (per_image[:, 0] <= 1.3 + 1e-4).all()


def test_nothing_to_do_gives_no_augmenter_and_tables_are_refused():
    assert make() is None
    with pytest.raises(DlxError, match="data.augment"):
        augmenter(Augment(hflip=True), DataSpec((4,), CLASSIFICATION, num_classes=3), 0, CPU, None)


def test_the_loop_augments_each_training_batch_and_nothing_else(runs_dir, monkeypatch):
    from dlx.config import load
    from dlx.data.augment import Augmenter
    from dlx.train import loop
    from tests.conftest import EXPERIMENTS, TINY_MLP

    steps = []
    original = Augmenter.__call__

    def counting(self, x, step):
        steps.append(step)
        return original(self, x, step)

    monkeypatch.setattr(Augmenter, "__call__", counting)
    config = load(EXPERIMENTS / "digits_cnn.yaml", [*TINY_MLP, "train.epochs=2", "data.augment.shift=1"])
    _, summary = loop.start(config, runs_dir, quiet=True)
    assert steps == list(range(summary["steps"])) == list(range(6))  # 3 batches an epoch; val and test untouched
