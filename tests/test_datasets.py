"""Every dataset loads with a consistent spec; downloadable sets from tiny files in their real formats."""
from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from torchvision import datasets as tv

from dlx import registry
from dlx.data.base import CLASSIFICATION, REGRESSION, ArrayData, make_splits
from dlx.data.sequences import contains
from dlx.errors import DlxError

# text corpora are not tables of examples: tests/test_text.py covers them; shards stream (tests/test_shards.py)
OTHER_TESTS = {"dlx.data.corpora", "dlx.data.shards"}
OTHER_TESTS |= {"dlx.data.pair_tasks", "dlx.data.parallel"}  # token ids, not features: tests/test_seq2seq.py


# --- tiny files in the real formats --------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX as in MNIST: magic (0, 0, 0x08 = unsigned byte, number of dimensions), big-endian sizes, the bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def pixels(n: int, *shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def write_mnist_like(root: Path, cls: type[tv.MNIST], n_train: int = 12, n_test: int = 5) -> Path:
    raw = root / cls.__name__ / "raw"
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", pixels(n, 28, 28, seed=n))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    return root


def write_cifar(root: Path, cls: type[tv.CIFAR10], n: int = 4) -> Path:
    folder = root / cls.base_folder
    folder.mkdir(parents=True)
    fine = cls is tv.CIFAR100
    for i, (name, _) in enumerate([*cls.train_list, *cls.test_list]):
        batch = {"data": pixels(n, 3 * 32 * 32, seed=i), ("fine_labels" if fine else "labels"): [j % 10 for j in range(n)]}
        with (folder / name).open("wb") as f:
            pickle.dump(batch, f)
    with (folder / cls.meta["filename"]).open("wb") as f:
        pickle.dump({cls.meta["key"]: [f"class{j}" for j in range(100 if fine else 10)]}, f)
    return root


def write_svhn(root: Path, n: int = 6) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        images = pixels(n, 32, 32, 3, seed=n).transpose(1, 2, 3, 0)  # (H, W, C, N) as in the .mat files
        labels = (np.arange(n) % 10 + 1).reshape(n, 1)  # 1..10, where 10 is the digit 0
        scipy.io.savemat(root / tv.SVHN.split_list[split][1], {"X": images, "y": labels})
    return root


def write_image_folder(root: Path, classes=("cat", "dog"), per_class: int = 3) -> Path:
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((12, 10, 3), 40 * c + i, dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


def write_csv(path: Path) -> Path:
    path.write_text("height,colour,weight,kind\n1.0,red,10,apple\n2.0,green,20,pear\n3.0,red,30,apple\n"
                    "4.0,blue,40,pear\n5.0,green,50,apple\n6.0,red,60.5,pear\n")
    return path


def write_npz(path: Path) -> Path:
    np.savez(path, x=np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32), y=np.arange(20) % 4,
             x_test=np.zeros((5, 3), np.float32), y_test=np.arange(5) % 4)
    return path


DOWNLOADED = {
    "mnist": lambda tmp: write_mnist_like(tmp, tv.MNIST), "fashion_mnist": lambda tmp: write_mnist_like(tmp, tv.FashionMNIST),
    "kmnist": lambda tmp: write_mnist_like(tmp, tv.KMNIST), "cifar10": lambda tmp: write_cifar(tmp, tv.CIFAR10),
    "cifar100": lambda tmp: write_cifar(tmp, tv.CIFAR100), "svhn": write_svhn,
}
SETTINGS = {  # what each dataset that reads files needs, written to tmp_path
    **{name: (lambda write: lambda tmp: {"root": str(write(tmp))})(write) for name, write in DOWNLOADED.items()},
    "image_folder": lambda tmp: {"path": str(write_image_folder(tmp / "images")), "size": 8},
    "csv": lambda tmp: {"path": str(write_csv(tmp / "fruit.csv")), "target": "kind"},
    "tensors": lambda tmp: {"path": str(write_npz(tmp / "arrays.npz"))},
}


def load(name: str, tmp_path: Path) -> ArrayData:
    settings = SETTINGS.get(name, lambda tmp: {})(tmp_path)
    entry = registry.datasets.get(name)
    return entry.build(**entry.resolve(settings, "data"))


def tables() -> list[str]:
    return [e.name for e in registry.datasets.list() if e.obj.__module__ not in OTHER_TESTS]


# --- every entry ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", tables())
def test_every_dataset_loads_with_a_consistent_spec(name, tmp_path):
    data = load(name, tmp_path)
    spec = data.spec()
    if data.x.dtype == torch.uint8:  # image files are held as their pixels, a quarter of float32's memory
        assert spec.is_image and (name in DOWNLOADED or name == "image_folder")
    else:
        assert data.x.is_floating_point() and torch.isfinite(data.x).all()
        assert not spec.is_image or (0.0 <= data.x.min() and data.x.max() <= 1.0)  # digits: floats in [0, 1]
    assert data.x.shape[1:] == spec.in_shape and len(data.x) == len(data.y) > 0
    if spec.task == CLASSIFICATION:
        assert data.y.dtype == torch.long and data.y.dim() == 1
        assert 0 <= data.y.min() and data.y.max() < spec.num_classes == len(spec.class_names)
    else:
        assert spec.task == REGRESSION and data.y.is_floating_point() and data.y.shape == (len(data.x), spec.out_features)
    if data.test is not None:
        assert data.test[0].shape[1:] == spec.in_shape and len(data.test[0]) == len(data.test[1])
    splits = make_splits(data, (0.6, 0.2, 0.2), 0, True, torch.device("cpu"))
    assert sum(len(splits[s][0]) for s in ("train", "val")) + (0 if data.test is not None else len(splits["test"][0])) \
        == len(data.x)


@pytest.mark.parametrize("name", sorted(DOWNLOADED))
def test_downloadable_sets_fail_in_one_line_naming_the_files_when_absent(name, tmp_path):
    with pytest.raises(DlxError) as error:
        registry.datasets.get(name).build(root=str(tmp_path))  # nothing written: the data dir is empty
    message = str(error.value)
    assert "\n" not in message and str(tmp_path) in message and "download=True" in message
    assert any(word in message for word in ("ubyte", "batch", "train", ".mat"))


# --- the formats are read right ------------------------------------------------------------------------
def test_mnist_pixels_labels_and_official_test_split(tmp_path):
    data = load("mnist", tmp_path)
    assert data.x.shape == (12, 1, 28, 28) and data.test[0].shape == (5, 1, 28, 28)
    assert torch.equal(data.x[:, 0], torch.as_tensor(pixels(12, 28, 28, seed=12)))
    assert data.y.tolist() == [i % 10 for i in range(12)] and data.class_names[0].startswith("0")


def test_cifar_planes_become_channels_and_meta_names_the_classes(tmp_path):
    data = load("cifar10", tmp_path)
    assert data.x.shape == (20, 3, 32, 32) and data.test[0].shape == (4, 3, 32, 32)  # five batches of 4
    first = pixels(4, 3072, seed=0)[0].reshape(3, 32, 32)  # the red plane, then green, then blue
    assert torch.equal(data.x[0], torch.as_tensor(first))
    assert data.class_names == tuple(f"class{j}" for j in range(10))
    assert len(load("cifar100", tmp_path / "c100").class_names) == 100


def test_cifar_batches_of_different_sizes_are_read_whole_and_in_order(tmp_path):
    """The reader fills one array batch by batch, sized from the first: a larger batch later makes room."""
    write_cifar(tmp_path, tv.CIFAR10)
    bigger = {"data": pixels(9, 3 * 32 * 32, seed=99), "labels": [j % 10 for j in range(9)]}
    with (tmp_path / tv.CIFAR10.base_folder / "data_batch_5").open("wb") as f:
        pickle.dump(bigger, f)
    data = registry.datasets.get("cifar10").build(root=str(tmp_path), download=False)
    assert data.x.shape == (4 * 4 + 9, 3, 32, 32) and data.y.tolist()[-9:] == bigger["labels"]
    assert torch.equal(data.x[-9:], torch.as_tensor(bigger["data"]).reshape(9, 3, 32, 32))


def test_cifar_pickles_that_would_run_code_are_refused(tmp_path):
    write_cifar(tmp_path, tv.CIFAR10)
    with (tmp_path / tv.CIFAR10.base_folder / "test_batch").open("wb") as f:
        pickle.dump({"data": Path("x"), "labels": []}, f)  # a pickle that constructs an arbitrary class
    with pytest.raises(DlxError, match="not a CIFAR batch"):
        registry.datasets.get("cifar10").build(root=str(tmp_path))


def test_svhn_maps_label_10_to_digit_0_and_hwcn_to_nchw(tmp_path):
    data = load("svhn", tmp_path)
    assert data.y.tolist() == [1, 2, 3, 4, 5, 6]
    images = pixels(6, 32, 32, 3, seed=6)  # (N, H, W, C)
    assert torch.equal(data.x[2], torch.as_tensor(images[2].transpose(2, 0, 1)))


def test_the_data_dir_comes_from_dlx_data_when_root_is_not_set(tmp_path, monkeypatch):
    monkeypatch.setenv("DLX_DATA", str(write_mnist_like(tmp_path, tv.KMNIST)))
    assert len(registry.datasets.get("kmnist").build().x) == 12


# --- the user's own files ------------------------------------------------------------------------------
def test_image_folder_resizes_and_names_classes_by_folder(tmp_path):
    root = write_image_folder(tmp_path / "train")
    data = registry.datasets.get("image_folder").build(path=str(root), size=8, channels=1,
                                                       test_path=str(write_image_folder(tmp_path / "test")))
    assert data.x.shape == (6, 1, 8, 8) and data.class_names == ("cat", "dog") and data.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.x.dtype == torch.uint8 and data.x[1].unique().tolist() == [1]  # the grey level as the file holds it
    assert data.test[0].shape == (6, 1, 8, 8)
    with pytest.raises(DlxError, match="has classes"):
        registry.datasets.get("image_folder").build(path=str(root), test_path=str(write_image_folder(tmp_path / "t2", ("a", "b"))))
    with pytest.raises(DlxError, match="does not exist"):
        registry.datasets.get("image_folder").build(path=str(tmp_path / "nowhere"))


def test_csv_one_hot_encodes_words_and_picks_the_task(tmp_path):
    path = str(write_csv(tmp_path / "fruit.csv"))
    data = registry.datasets.get("csv").build(path=path, target="kind")
    assert data.task == CLASSIFICATION and data.class_names == ("apple", "pear") and data.y.tolist() == [0, 1, 0, 1, 0, 1]
    # height, then colour one-hot (blue, green, red), then weight
    assert data.x[0].tolist() == [1.0, 0.0, 0.0, 1.0, 10.0] and data.x.shape == (6, 5)
    weight = registry.datasets.get("csv").build(path=path, target="weight")
    assert weight.task == REGRESSION and weight.y[-1].item() == 60.5
    assert registry.datasets.get("csv").build(path=path, target="height", task="classification").spec().num_classes == 6
    with pytest.raises(DlxError, match="no column 'kinds'"):
        registry.datasets.get("csv").build(path=path, target="kinds")


def test_tensors_from_npz_and_pt(tmp_path):
    data = registry.datasets.get("npz").build(path=str(write_npz(tmp_path / "a.npz")))
    assert data.task == CLASSIFICATION and data.x.shape == (20, 3) and data.test[0].shape == (5, 3)
    torch.save({"x": torch.randn(8, 2), "y": torch.randn(8)}, tmp_path / "b.pt")
    pt = registry.datasets.get("pt").build(path=str(tmp_path / "b.pt"))
    assert pt.task == REGRESSION and pt.y.shape == (8, 1) and pt.test is None
    torch.save({"x": torch.randn(8, 2)}, tmp_path / "c.pt")
    with pytest.raises(DlxError, match="has no y"):
        registry.datasets.get("tensors").build(path=str(tmp_path / "c.pt"))


# --- generated sets ------------------------------------------------------------------------------------
def test_bitpattern_labels_say_whether_1011_occurs_and_classes_are_balanced():
    data = registry.datasets.get("bitpattern").build(n=500, length=12)
    bits = data.x.squeeze(-1).long()
    assert data.x.shape == (500, 12, 1) and data.y.sum() == 250
    assert torch.equal(contains(bits, "1011").long(), data.y)
    assert contains(torch.tensor([[0, 1, 0, 1, 1], [1, 1, 0, 1, 0]]), "1011").tolist() == [True, False]


def test_runsum_label_is_the_digit_sum_modulo_10():
    data = registry.datasets.get("runsum").build(n=50, length=6)
    assert data.x.shape == (50, 6, 10) and torch.equal(data.x.argmax(-1).sum(1) % 10, data.y)


def test_per_step_labels_mark_where_the_pattern_ends_and_the_running_sum():
    bits = registry.datasets.get("bitpattern").build(n=64, length=10, per_step=True)
    stream = bits.x.squeeze(-1).long()
    for row, labels in zip(stream, bits.y):
        ends = [t for t in range(10) if t >= 3 and row[t - 3 : t + 1].tolist() == [1, 0, 1, 1]]
        assert labels.nonzero().flatten().tolist() == ends
    sums = registry.datasets.get("runsum").build(n=20, length=5, per_step=True)
    assert sums.y.shape == (20, 5) and torch.equal(sums.y, sums.x.argmax(-1).cumsum(1) % 10)
    splits = make_splits(sums, (0.6, 0.2, 0.2), 0, False, torch.device("cpu"))  # not stratified: labels are (N, T)
    assert [len(splits[s][1]) for s in ("train", "val", "test")] == [12, 4, 4]


@pytest.mark.parametrize("name", ["xor", "moons", "circles", "spirals", "blobs", "oak", "bitpattern", "runsum"])
def test_generated_sets_are_fixed_by_their_seed(name):
    entry = registry.datasets.get(name)
    a, b, c = entry.build(n=100, seed=1), entry.build(n=100, seed=1), entry.build(n=100, seed=2)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and not torch.equal(a.x, c.x)


def test_oak_follows_its_allometric_law():
    data = registry.datasets.get("oak").build(n=400, noise=0.0)
    diameter, age = data.x[:, 0], data.y[:, 0]
    assert torch.allclose(diameter, 1.28 * age**0.8, rtol=1e-5)
    noisy = registry.datasets.get("oak").build(n=400)
    ratio = noisy.x[:, 0] / (1.28 * noisy.y[:, 0] ** 0.8)
    assert 0.1 < ratio.log().std() < 0.2  # noise 0.15 in log space


def test_digits_are_scikit_learns_own_to_the_bit():
    """dlx reads the file load_digits reads without importing scikit-learn; the arrays must be the same."""
    import numpy as np
    from sklearn.datasets import load_digits

    from dlx.data.embedded import digits

    ours, theirs = digits(), load_digits()
    assert np.array_equal(ours.x.squeeze(1).numpy() * 16.0, theirs.images.astype(np.float32))
    assert np.array_equal(ours.y.numpy(), theirs.target) and ours.class_names == tuple(map(str, theirs.target_names))


def test_data_resize_scales_every_split_of_images_and_refuses_tables():
    from dlx import build
    from dlx.config import load

    digits = "experiments/digits_lenet1.yaml"
    parts = build.splits(load(digits, ["data.resize=16"]), torch.device("cpu"))
    assert all(parts[s][0].shape[1:] == (1, 16, 16) for s in ("train", "val", "test"))
    plain = build.dataset(load(digits, ["data.resize=null"]))
    resized = build.dataset(load(digits, ["data.resize=16"]))
    # bilinear upscaling by 2 keeps each image's mean brightness within a small border effect
    assert torch.allclose(resized.x.mean(dim=(1, 2, 3)), plain.x.mean(dim=(1, 2, 3)), atol=0.02)
    with pytest.raises(DlxError, match="data.resize: dataset 'iris' holds no images"):
        build.dataset(load("experiments/iris_mlp.yaml", ["data.resize=16"]))
