"""dlx's LIME against the `lime` package's LimeImageExplainer: same model, image, segmentation, samples, kernel
width and surrogate, in one process.

Two models: a digits CNN trained for a few epochs (8x8 grey), and a ResNet-20 on generated 32x32 RGB images (smooth
random pictures; an untrained network, since only the time and the agreement of the two explainers count). For
each of several images both explain the predicted class with the same superpixels (dlx's SLIC segmentation handed
to lime as its segmentation_fn), 1000 samples, the kernel width 0.25, removed superpixels filled with their mean
colour, and the same surrogate: the 5 superpixels with the largest weights in a lightly regularised weighted ridge
fit, refitted by a weighted Ridge(alpha=1) (lime's feature_selection='highest_weights' with its default regressor;
dlx's surrogate=top_k). Both see the logits; lime hands its classifier batches of 10, dlx chooses its own batch.
The runs alternate; the best of --repeats is kept for each. Prints per image the times, their ratio and how many
of the top-5 superpixels agree, and the time of the 1000 forward passes alone (dlx's batch and layout) with lime's
time over it: the ceiling of any ratio at equal work; the closing line per model gives the median ratio (targets: >= 5 on digits, >= 2
on the ResNet-20) and the smallest overlap (target >= 4 of 5).

The `lime` package is needed only here: pip install -r bench/requirements.txt

Both run in one process whose C library keeps freed memory for reuse, as the dlx command sets it up
(dlx.allocator): without it every forward pass of either side faults in fresh pages.

`--busy` keeps the machine's last core busy with a spinning process of this script's own while it measures.

    python bench/explain_lime.py [--images 5] [--repeats 3] [--epochs 5] [--threads N] [--models digits resnet20] [--busy]
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import lime.lime_image
import numpy as np
import torch
from lime.lime_image import LimeImageExplainer
from sklearn.linear_model import Ridge

import cpu_threads  # bench/cpu_threads.py, beside this script
from dlx import registry
from dlx.allocator import keep_freed_blocks
from dlx.data.base import CLASSIFICATION, DataSpec
from dlx.config import load
from dlx.explain.lime import batch_for, class_scores, mean_fill, superpixels
from dlx.explain.lime import lime as dlx_lime
from dlx.run.trained import open_trained
from dlx.train import loop

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"
SAMPLES, WIDTH, TOP = 1000, 0.25, 5
lime.lime_image.tqdm = iter  # lime's progress bar off: it would only add to lime's time and flood the output


def train(folder: Path, epochs: int) -> Path:
    config = load(EXPERIMENTS / "digits_cnn.yaml", [f"train.epochs={epochs}", "train.device=cpu", "name=bench"])
    run, _ = loop.start(config, folder, quiet=True)
    return run.path


def with_lime_package(model, x: torch.Tensor, segments: np.ndarray, target: int) -> list[int]:
    channels = x.shape[1]

    def classifier(images: np.ndarray) -> np.ndarray:  # lime hands over (N, H, W, 3) images, grey ones as RGB
        batch = torch.as_tensor(images[..., :channels], dtype=torch.float32).permute(0, 3, 1, 2)
        with torch.inference_mode():
            return model(batch).numpy()

    explainer = LimeImageExplainer(kernel_width=WIDTH, feature_selection="highest_weights", random_state=0)
    image = x[0].permute(1, 2, 0).numpy().astype(np.float64)  # (H, W, C): lime turns a grey image into RGB itself
    image = image[..., 0] if channels == 1 else image
    found = explainer.explain_instance(image, classifier, labels=(target,), top_labels=None, num_features=TOP,
                                       num_samples=SAMPLES, segmentation_fn=lambda _: segments,
                                       model_regressor=Ridge(alpha=1.0), hide_color=None)
    return [int(f) for f, _ in found.local_exp[target][:TOP]]


def with_dlx(model, x: torch.Tensor, segments: np.ndarray, target: int) -> list[int]:
    found = dlx_lime(model, x, target, samples=SAMPLES, kernel_width=WIDTH, surrogate="top_k", top_k=TOP, alpha=1.0,
                     fill="mean")
    assert np.array_equal(found.extras["segments"].numpy(), segments), "both must use the same superpixels"
    return [r["superpixel"] for r in found.ranking[:TOP]]


def forward_passes(model, x: torch.Tensor, segments: np.ndarray) -> float:
    """The time of LIME's forward passes alone: 1000 sub-images through the model at dlx's batch, in its layout.
    No LIME doing the same work can take less, so lime's time over this is the most any could gain on it."""
    labels = torch.as_tensor(segments)
    binary = torch.randint(0, 2, (SAMPLES, int(labels.max()) + 1), generator=torch.Generator().manual_seed(0))
    fill, batch = mean_fill(x, labels), batch_for(model, x, SAMPLES)
    return timed(lambda: class_scores(model, x, fill, labels, binary, 0, batch))[0]


def timed(fn) -> tuple[float, list[int]]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def digits(images: int, epochs: int) -> tuple[torch.nn.Module, torch.Tensor]:
    with tempfile.TemporaryDirectory() as folder:
        trained = open_trained(train(Path(folder), epochs), device="cpu")
    return trained.model, trained.data["test"][0][:images]


def resnet20(images: int, epochs: int) -> tuple[torch.nn.Module, torch.Tensor]:
    """An untrained ResNet-20 (seeded) and smooth random 32x32 RGB pictures: 4x4 random colours, enlarged."""
    torch.manual_seed(0)
    spec = DataSpec((3, 32, 32), CLASSIFICATION, num_classes=10, class_names=tuple(map(str, range(10))))
    model = registry.models.get("resnet20").build(spec).eval()
    coarse = torch.rand(images, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    return model, torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)


MODELS = {"digits": (digits, 5), "resnet20": (resnet20, 2)}  # the target ratio of each


def compare(name: str, model: torch.nn.Module, xs: torch.Tensor, repeats: int) -> None:
    target_ratio = MODELS[name][1]
    side = xs.shape[-2] * xs.shape[-1]
    defaults = {"segments": min(50, side // 4), "compactness": 10.0, "kernel_size": 2.0, "max_dist": 6.0,
                "ratio": 0.5, "seed": 0}  # what dlx's lime uses by default
    ratios, overlaps, ceilings = [], [], []
    print(f"{name}: {'image':>5} {'superpixels':>11} {'lime s':>8} {'dlx s':>8} {'ratio':>6} {'top-5 shared':>12} "
          f"{'forwards s':>10} {'ceiling':>7}")
    for i in range(len(xs)):
        x = xs[i : i + 1]
        with torch.no_grad():
            target = int(model(x).argmax())
        segments = superpixels(x, "slic", **defaults).numpy()
        ours, theirs, forwards = [], [], []
        for _ in range(repeats):  # alternate, so that a busy moment of the machine hits all alike
            ours.append(timed(lambda: with_dlx(model, x, segments, target)))
            theirs.append(timed(lambda: with_lime_package(model, x, segments, target)))
            forwards.append(forward_passes(model, x, segments))
        dlx_s, dlx_top = min(ours, key=lambda r: r[0])
        lime_s, lime_top = min(theirs, key=lambda r: r[0])
        shared = len(set(dlx_top) & set(lime_top))
        ratios.append(lime_s / dlx_s)
        overlaps.append(shared)
        ceilings.append(lime_s / min(forwards))
        print(f"{name}: {i:>5} {segments.max() + 1:>11} {lime_s:>8.4f} {dlx_s:>8.4f} {lime_s / dlx_s:>6.1f} "
              f"{shared:>10}/5 {min(forwards):>10.4f} {ceilings[-1]:>7.1f}")
    print(f"{name}: dlx LIME is {statistics.median(ratios):.1f}x faster than lime's LimeImageExplainer (median over "
          f"{len(xs)} images; target >= {target_ratio}x); top-5 superpixels shared: at least {min(overlaps)} of 5 "
          f"(target >= 4), mean {statistics.mean(overlaps):.1f}")
    print(f"{name}: the forward passes alone take 1/{statistics.median(ceilings):.1f} of lime's time: no LIME doing the "
          f"same work on this machine can be more than {statistics.median(ceilings):.1f}x faster than lime's")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--busy", action="store_true", help="measure with a busy loop on the last core")
    cpu_threads.add_option(parser)
    args = parser.parse_args()
    keep_freed_blocks()
    for name in args.models:
        model, xs = MODELS[name][0](args.images, args.epochs)
        cpu_threads.apply(args)  # after training, which sets the count it chose
        with cpu_threads.busy_core() if args.busy else contextlib.nullcontext():
            compare(name, model, xs, args.repeats)


if __name__ == "__main__":
    main()
