"""Image folders decoded by a pool of threads and cached as uint8: the same pixels as torchvision's ImageFolder
read, the cache read instead of the files on the second load, and a changed folder read again."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dlx.data import decode
from dlx.data.files import image_folder


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch, tmp_path):
    """A few images go through the pool and the cache, which lives under a temporary data dir."""
    monkeypatch.setattr(decode, "PARALLEL_FROM", 4)
    monkeypatch.setattr(decode, "CACHE_FROM", 4)
    monkeypatch.setattr(decode, "CHUNK", 3)
    monkeypatch.setenv("DLX_DATA", str(tmp_path / "data"))


def write_folder(root: Path, per_class: int = 5) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (11 + i, 9, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def caches() -> list[Path]:
    return sorted(decode.cache_dir().glob("*.npy"))


@pytest.mark.parametrize("channels", [1, 3])
def test_the_pixels_are_torchvisions_imagefolder_read_bit_for_bit(tmp_path, channels):
    from torchvision import datasets, transforms

    root = write_folder(tmp_path / "images")
    steps = [transforms.Resize((8, 8)), *([transforms.Grayscale(1)] if channels == 1 else []), transforms.PILToTensor()]
    folder = datasets.ImageFolder(str(root), transform=transforms.Compose(steps))
    data = image_folder(path=str(root), size=8, channels=channels)
    assert torch.equal(data.x, torch.stack([x for x, _ in folder]))
    assert data.y.tolist() == folder.targets and list(data.class_names) == folder.classes


def test_the_second_load_reads_the_cache_and_a_changed_folder_is_read_again(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "images")
    first = image_folder(path=str(root), size=8).x
    assert len(caches()) == 1
    decoded = []
    real = decode.decode_all
    monkeypatch.setattr(decode, "decode_all", lambda files, *a: decoded.append(len(files)) or real(files, *a))
    assert torch.equal(image_folder(path=str(root), size=8).x, first) and decoded == []  # from the cache
    image_folder(path=str(root), size=16)  # other resize settings: another cache beside the first
    assert decoded == [10] and len(caches()) == 2

    changed = root / "dog" / "3.png"
    Image.fromarray(np.zeros((14, 9, 3), np.uint8)).save(changed)
    os.utime(changed, ns=(1, 1))  # a rewritten file may keep its size; its modification time differs
    again = image_folder(path=str(root), size=8).x
    assert decoded == [10, 10] and not torch.equal(again, first) and again[8].max() == 0
    assert len(caches()) == 2  # the stale cache of size 8 was replaced, not kept beside the new one

    (root / "cat" / "0.jpg").unlink()
    assert len(image_folder(path=str(root), size=8).x) == 9 and decoded[-1] == 9


def test_a_damaged_cache_is_decoded_again_and_an_unwritable_one_only_costs_a_note(tmp_path, capsys):
    root = write_folder(tmp_path / "images")
    first = image_folder(path=str(root), size=8).x
    cache, = caches()
    cache.write_bytes(cache.read_bytes()[:100])  # cut short
    assert torch.equal(image_folder(path=str(root), size=8).x, first)
    assert cache.stat().st_size > 100  # written whole again

    decode.cache_dir().rename(tmp_path / "moved")
    decode.cache_dir().write_text("a file where the cache folder goes: nothing can be written there")
    assert torch.equal(image_folder(path=str(root), size=8).x, first)
    assert "could not cache the decoded images" in capsys.readouterr().err


def test_a_bad_image_in_the_pool_is_one_line_naming_it(tmp_path):
    from dlx.errors import DlxError

    root = write_folder(tmp_path / "images")
    (root / "cat" / "2.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DlxError, match=r"cat/2\.jpg: cannot read it as an image"):
        image_folder(path=str(root), size=8)
