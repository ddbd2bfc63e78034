"""Images are held as their uint8 pixels and become standardised floats a batch at a time, on the device: the model
reads what it read when they were held as floats, for a quarter of the memory."""
from __future__ import annotations

import math

import pytest
import torch

from dlx.data import base
from dlx.data.base import CLASSIFICATION, ArrayData, Standardizer, make_splits

CPU = torch.device("cpu")


def pixel_data(n: int = 300) -> ArrayData:
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 6, 5), dtype=torch.uint8, generator=generator)
    x[:, 1] //= 4  # channels with different statistics
    return ArrayData(x, torch.arange(n) % 3, CLASSIFICATION)


def as_floats(data: ArrayData) -> ArrayData:
    """The same data held as dlx held images before: floats in [0, 1]."""
    return ArrayData(data.x.float() / 255, data.y, data.task)


def test_pixel_statistics_are_those_of_the_floats_without_a_float_copy():
    x = pixel_data().x
    ours, floats = Standardizer.fit(x), Standardizer.fit(x.float() / 255)
    assert ours.mean.shape == floats.mean.shape == (1, 3, 1, 1) and ours.mean.dtype == torch.float32
    torch.testing.assert_close(ours.mean, floats.mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.std, floats.std, rtol=0, atol=1e-6)


@pytest.mark.parametrize("standardize", [True, False])
def test_splits_keep_bytes_and_batches_are_the_floats_the_model_read_before(standardize, device):
    data = pixel_data()
    compact = make_splits(data, (0.6, 0.2, 0.2), 0, standardize, torch.device(device))
    before = make_splits(as_floats(data), (0.6, 0.2, 0.2), 0, standardize, torch.device(device))
    assert all(compact.parts[s][0].dtype == torch.uint8 for s in ("train", "val", "test"))
    assert compact.parts["train"][0].device.type == device  # bytes on the device, floats made there
    assert (compact.standardizer is None) == (before.standardizer is None) == (not standardize)
    order = torch.Generator().manual_seed(1)
    batches = zip(compact.batches("train", 64, shuffle=True).epoch(order),
                  before.batches("train", 64, shuffle=True).epoch(torch.Generator().manual_seed(1)))
    for (x, y), (x_before, y_before) in batches:
        assert x.dtype == torch.float32 and x.device.type == device and torch.equal(y, y_before)
        torch.testing.assert_close(x, x_before, rtol=0, atol=1e-5)
    for split in ("val", "test"):  # evaluation, explanation and export read whole splits the same way
        torch.testing.assert_close(compact[split][0], before[split][0], rtol=0, atol=1e-5)
        torch.testing.assert_close(compact.first(split, 7)[0], compact[split][0][:7], rtol=0, atol=0)


@pytest.mark.parametrize("whole_epoch_bytes", [0, 2**25], ids=["a gather a batch", "one gather an epoch"])
def test_splits_are_rows_of_the_one_tensor_and_an_epoch_is_the_whole_shuffled_split_in_order(whole_epoch_bytes,
                                                                                            monkeypatch):
    """No split copies the pixels (the copies were made while the whole tensor was held: twice the memory), and
    gathering a batch at a time (large splits) gives exactly the batches of one shuffled copy (small ones)."""
    monkeypatch.setattr(base, "WHOLE_EPOCH_BYTES", whole_epoch_bytes)
    data = pixel_data()
    splits = make_splits(data, (0.6, 0.2, 0.2), 0, False, CPU)
    assert {splits.parts[s][0].source.data_ptr() for s in ("train", "val", "test")} == {data.x.data_ptr()}
    x, y = splits["train"]
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(3))
    batches = list(splits.batches("train", 50, shuffle=True).epoch(torch.Generator().manual_seed(3)))
    assert len(batches) == math.ceil(len(x) / 50)
    assert torch.equal(torch.cat([b[0] for b in batches]), x[order]) and torch.equal(torch.cat([b[1] for b in batches]), y[order])


def test_an_autoencoders_target_is_its_input_as_the_model_reads_it():
    splits = make_splits(pixel_data().as_reconstruction(), (0.6, 0.2, 0.2), 0, True, CPU)
    x, y = next(iter(splits.batches("train", 32)))
    assert x.dtype == torch.float32 and y is x
    assert splits.parts["train"][1].dtype == torch.uint8  # the target is stored once, as the pixels


def test_tables_stay_floats_and_read_exactly_as_before():
    x = torch.randn(100, 4)
    splits = make_splits(ArrayData(x, torch.arange(100) % 2, CLASSIFICATION), (0.6, 0.2, 0.2), 0, True, CPU)
    raw = splits.parts["train"][0][:]  # the split's rows as stored
    assert raw.dtype == torch.float32
    assert torch.equal(splits["train"][0], (raw - raw.mean(0, keepdim=True)) / raw.std(0, keepdim=True))


def test_an_image_run_reads_the_same_floats_in_evaluation_and_in_its_export(tmp_path):
    """Trained on CIFAR-format pixels: dlx evaluate reproduces the run's own test accuracy, and the exported model,
    fed raw 0-255 pixels, answers as dlx does."""
    import dlx
    from dlx.export import check, export
    from tests.conftest import EXPERIMENTS
    from tests.test_datasets import tv, write_cifar

    root = write_cifar(tmp_path / "data", tv.CIFAR10, n=20)
    run = dlx.train(EXPERIMENTS / "cifar10_vanilla_cnn.yaml", runs_dir=tmp_path / "runs", set={
        "data.root": str(root), "model.name": "cnn", "model.width": 4, "model.hidden": 8, "train.epochs": 1,
        "train.device": "cpu", "eval.metrics": ["accuracy"]})
    assert run.evaluate("test")["metrics"]["accuracy"] == run.metrics["test"]["accuracy"]
    exported = export(run.path, "torchscript", tmp_path / "model.pt")
    assert check(run.path, exported, "torchscript").passed
