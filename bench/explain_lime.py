"""dlx's LIME against the `lime` package's LimeImageExplainer: same model, image, segmentation, samples, kernel
width and surrogate, in one process.

A digits CNN is trained for a few epochs; for each of several test images both explain the predicted class with
the same superpixels (dlx's SLIC segmentation handed to lime as its segmentation_fn), 1000 samples, the kernel
width 0.25, removed superpixels filled with their mean colour, and the same surrogate: the 5 superpixels with the
largest weights in a lightly regularised weighted ridge fit, refitted by a weighted Ridge(alpha=1) (lime's
feature_selection='highest_weights' with its default regressor; dlx's surrogate=top_k). Both see the logits.
The runs alternate; the best of --repeats is kept for each. Prints per image the times, their ratio and how
many of the top-5 superpixels agree; the closing line gives the median ratio (target >= 5) and the smallest
overlap (target >= 4 of 5).

The `lime` package is needed only here: pip install -r bench/requirements.txt

    python bench/explain_lime.py [--images 5] [--repeats 3] [--epochs 5] [--threads N]
"""
from __future__ import annotations

import argparse
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
from dlx.config import load
from dlx.explain.lime import lime as dlx_lime
from dlx.explain.lime import superpixels
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
    def classifier(images: np.ndarray) -> np.ndarray:  # lime hands over (N, H, W, 3) grey-as-RGB images
        batch = torch.as_tensor(images[..., :1], dtype=torch.float32).permute(0, 3, 1, 2)
        with torch.inference_mode():
            return model(batch).numpy()

    explainer = LimeImageExplainer(kernel_width=WIDTH, feature_selection="highest_weights", random_state=0)
    image = x[0, 0].numpy().astype(np.float64)  # (H, W): lime turns it into RGB itself
    found = explainer.explain_instance(image, classifier, labels=(target,), top_labels=None, num_features=TOP,
                                       num_samples=SAMPLES, segmentation_fn=lambda _: segments,
                                       model_regressor=Ridge(alpha=1.0), hide_color=None)
    return [int(f) for f, _ in found.local_exp[target][:TOP]]


def with_dlx(model, x: torch.Tensor, segments: np.ndarray, target: int) -> list[int]:
    found = dlx_lime(model, x, target, samples=SAMPLES, kernel_width=WIDTH, surrogate="top_k", top_k=TOP, alpha=1.0,
                     fill="mean")
    assert np.array_equal(found.extras["segments"].numpy(), segments), "both must use the same superpixels"
    return [r["superpixel"] for r in found.ranking[:TOP]]


def timed(fn) -> tuple[float, list[int]]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    cpu_threads.add_option(parser)
    args = parser.parse_args()
    cpu_threads.apply(args)
    with tempfile.TemporaryDirectory() as folder:
        trained = open_trained(train(Path(folder), args.epochs), device="cpu")
    model, (xs, _) = trained.model, trained.data["test"]
    defaults = {"segments": 16, "compactness": 10.0, "kernel_size": 2.0, "max_dist": 6.0, "ratio": 0.5, "seed": 0}
    ratios, overlaps = [], []
    print(f"{'image':>5} {'superpixels':>11} {'lime s':>8} {'dlx s':>8} {'ratio':>6} {'top-5 shared':>12}")
    for i in range(args.images):
        x = xs[i : i + 1]
        with torch.no_grad():
            target = int(model(x).argmax())
        segments = superpixels(x, "slic", **defaults).numpy()  # what dlx's lime uses with its defaults on 8x8
        ours, theirs = [], []
        for _ in range(args.repeats):  # alternate, so that a busy moment of the machine hits both alike
            ours.append(timed(lambda: with_dlx(model, x, segments, target)))
            theirs.append(timed(lambda: with_lime_package(model, x, segments, target)))
        dlx_s, dlx_top = min(ours, key=lambda r: r[0])
        lime_s, lime_top = min(theirs, key=lambda r: r[0])
        shared = len(set(dlx_top) & set(lime_top))
        ratios.append(lime_s / dlx_s)
        overlaps.append(shared)
        print(f"{i:>5} {segments.max() + 1:>11} {lime_s:>8.4f} {dlx_s:>8.4f} {lime_s / dlx_s:>6.1f} {shared:>10}/5")
    print(f"dlx LIME is {statistics.median(ratios):.1f}x faster than lime's LimeImageExplainer (median over "
          f"{args.images} images; target >= 5x); top-5 superpixels shared: at least {min(overlaps)} of 5 "
          f"(target >= 4), mean {statistics.mean(overlaps):.1f}")


if __name__ == "__main__":
    main()
