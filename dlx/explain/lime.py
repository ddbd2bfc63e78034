"""LIME (COURSE.md): split the image into superpixels P_1..P_l (a table: one per feature); sample binary vectors
x_k in {0,1}^l that keep the superpixels with x_k = 1; record the logit xi_i of each sub-image; fit a sparse linear
model weighted by pi_k = exp(-(1 - sqrt(1 - s_k/l))^2 / (2 nu^2)), s_k = the number of zeros in x_k.

The samples go through the model in batches: building a batch of sub-images is one indexing operation, so the
cost is forward passes, not a Python loop per sample (captum's Lime builds and weighs its samples one by one).
A batch holds as many sub-images as keep the model's largest activation within CACHE_BYTES: one batch of all 1000
samples spilled to memory and made a ResNet-20 on 32x32 images 3x slower. The best batch on this 2-core machine:
256 digits (1000 took 5% longer on 2 threads, 27% on one), 64-128 ResNet images (32 took 5% longer).
The lasso surrogate is scikit-learn's, the top_k one's ridge fits are Ridge's in closed form (ridge()); the
superpixels are scikit-image's.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field
from threadpoolctl import ThreadpoolController
from torch import Tensor, nn

from dlx.errors import DlxError
from dlx.explain import layers
from dlx.explain.base import Explanation, explainer

Positive = Annotated[float, Field(gt=0.0)]
CACHE_BYTES = 2**21  # the largest activation of a forward pass: 256 digits (8x8, 32 maps), 32 images for a ResNet-20


def superpixels(x: Tensor, method: Literal["slic", "quickshift"], segments: int, compactness: float,
                kernel_size: float, max_dist: float, ratio: float, seed: int) -> Tensor:
    """(1, C, H, W) -> (H, W) superpixel labels 0..l-1."""
    from skimage.segmentation import quickshift, slic

    image = x[0].detach().cpu().permute(1, 2, 0).double().numpy()  # (H, W, C)
    image = (image - image.min()) / max(float(image.max() - image.min()), 1e-12)  # scikit-image expects [0, 1]
    if method == "slic":
        labels = slic(image, n_segments=segments, compactness=compactness, start_label=0, channel_axis=-1)
    else:
        labels = quickshift(image, kernel_size=kernel_size, max_dist=max_dist, ratio=ratio, rng=seed,
                            convert2lab=image.shape[-1] == 3, channel_axis=-1)
    _, dense = np.unique(labels, return_inverse=True)  # 0..l-1 with no gaps
    return torch.as_tensor(dense.reshape(labels.shape), device=x.device)


def kernel(zeros: Tensor, features: int, width: float) -> Tensor:
    """pi_k for samples with `zeros` removed superpixels out of `features`. 1 - sqrt(1 - s/l) is the cosine
    distance between x_k and the all-ones vector (the unperturbed input)."""
    distance = 1 - torch.sqrt(1 - zeros.double() / features)
    return torch.exp(-distance.pow(2) / (2 * width**2))


def mean_fill(x: Tensor, segments: Tensor) -> Tensor:
    """The image with every superpixel painted in its own mean colour: (1, C, H, W)."""
    channels = x.shape[1]
    flat = segments.flatten()
    count = torch.bincount(flat).to(x.dtype)
    sums = torch.zeros(channels, len(count), dtype=x.dtype, device=x.device).index_add_(1, flat, x[0].reshape(channels, -1))
    return (sums / count)[:, segments][None]


def colour(x: Tensor, fill: float | list[float]) -> Tensor:
    """`x` painted in one value, or in one value per channel (per feature for a table)."""
    values = torch.as_tensor(fill, dtype=x.dtype, device=x.device).reshape(-1)
    if len(values) not in (1, x.shape[1]):
        raise DlxError(f"lime.fill: {len(values)} values, but the model's inputs have {x.shape[1]} "
                       f"{'channels' if x.dim() == 4 else 'features'}; give 1 value, {x.shape[1]} or 'mean'")
    return values.reshape(1, -1, *[1] * (x.dim() - 2)).expand_as(x)


def batch_for(model: nn.Module, x: Tensor, samples: int) -> int:
    """Sub-images per forward pass, from the bytes of the model's largest activation for one of them."""
    largest = max((math.prod(layer.shape[1:]) for layer in layers.trace(model, x)), default=x[0].numel())
    return max(1, min(samples, CACHE_BYTES // (largest * x.element_size())))


@contextmanager
def channels_last(model: nn.Module, x: Tensor) -> Iterator[Tensor]:
    """For many images on a CPU: the model's 4-d weights, and the image, in the channels-last layout while the block
    runs, where PyTorch's max pooling is about 15x faster than in the default one (a digits CNN spent 70% of its
    forward passes pooling) and convolutions a little faster; the logits agree to float rounding (4e-6 on the digits
    CNN). The weights are the model's own tensors again afterwards, however the block ends (a copy of the model took
    a tenth of LIME's time on digits). Elsewhere: the image as it is."""
    if x.dim() != 4 or x.device.type != "cpu":
        yield x
        return
    kept = {p: p.data for p in model.parameters() if p.dim() == 4}
    try:
        for p, data in kept.items():
            p.data = data.to(memory_format=torch.channels_last)  # restrided even with one channel
        yield x.to(memory_format=torch.channels_last)
    finally:
        for p, data in kept.items():
            p.data = data


def class_scores(model: nn.Module, x: Tensor, fill: Tensor, segments: Tensor, samples: Tensor, target: int,
                 batch_size: int) -> Tensor:
    """xi_target of every sub-image: sample k keeps the pixels whose superpixel j has samples[k, j] = 1."""
    scores = []
    with channels_last(model, x) as x, torch.inference_mode():
        for batch in samples.split(batch_size):
            keep = batch[:, segments].bool()  # (b, H, W) or (b, F)
            if x.dim() == 4:
                keep = keep[:, None]  # the same superpixel in every channel
            scores.append(model(torch.where(keep, x, fill))[:, target])  # in x's layout
    return torch.cat(scores).double().cpu()


def ridge(x: np.ndarray, y: np.ndarray, weights: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """scikit-learn's Ridge(alpha).fit(x, y, sample_weight=weights), coefficients and intercept, in closed form: x and
    y centred at their weighted means, (Xc^T W Xc + alpha I) w = Xc^T W yc solved (l x l for l superpixels), the
    intercept ybar - xbar . w. Two Ridge fits took 4.5 of LIME's 14 ms on digits, nearly all of it checking and
    copying the inputs; this takes microseconds and agrees with Ridge to 1e-9 (tests/test_explain_methods.py).
    A least-squares solve, so that alpha = 0 with a constant superpixel gives a solution as Ridge's fallback does."""
    total = weights.sum()
    x_mean, y_mean = weights @ x / total, weights @ y / total
    centred = x - x_mean
    weighted = centred * weights[:, None]
    gram = weighted.T @ centred + alpha * np.eye(x.shape[1])
    coef = np.linalg.lstsq(gram, weighted.T @ (y - y_mean), rcond=None)[0]
    return coef, float(y_mean - x_mean @ coef)


def weighted_r2(x: np.ndarray, y: np.ndarray, weights: np.ndarray, coef: np.ndarray, intercept: float) -> float:
    """The surrogate's R^2 on the samples, weighted as it was fitted (scikit-learn's score: 1 when y is constant and
    fitted exactly, 0 when it is constant and missed)."""
    unexplained = weights @ (y - x @ coef - intercept) ** 2
    spread = weights @ (y - weights @ y / weights.sum()) ** 2
    if spread == 0:
        return float(unexplained == 0)
    return float(1 - unexplained / spread)


def fit(samples: np.ndarray, scores: np.ndarray, weights: np.ndarray, surrogate: str, alpha: float,
        top_k: int) -> tuple[np.ndarray, float, float]:
    """The weighted sparse linear surrogate: coefficients (l,), intercept and weighted R^2 on the samples."""
    if surrogate == "lasso":  # Omega(w) = alpha ||w||_1
        from sklearn.linear_model import Lasso

        model = Lasso(alpha=alpha).fit(samples, scores, sample_weight=weights)
        return model.coef_, float(model.intercept_), model.score(samples, scores, sample_weight=weights)
    # top_k: the K superpixels with the largest weights in a lightly regularised fit, then a ridge fit on them
    everything, _ = ridge(samples, scores, weights, 0.01)
    chosen = np.sort(np.argsort(-np.abs(everything), kind="stable")[:top_k])
    kept, intercept = ridge(samples[:, chosen], scores, weights, alpha)
    coef = np.zeros(samples.shape[1])
    coef[chosen] = kept
    return coef, intercept, weighted_r2(samples[:, chosen], scores, weights, kept, intercept)


@functools.cache
def blas() -> ThreadpoolController:
    """The thread pools of the libraries loaded, found once: finding them takes milliseconds, limiting them 10 us."""
    return ThreadpoolController()


@explainer("lime", "a sparse linear model of the logit on superpixels (features), fitted to seeded samples",
           inputs=("image", "table"))
def lime(model: nn.Module, x: Tensor, target: int, *,
         segmentation: Literal["slic", "quickshift"] = "slic",
         segments: Annotated[int, Field(ge=1)] | None = None,  # slic: superpixels it aims for; None: 50, fewer on small images
         compactness: Positive = 10.0,  # slic: higher gives squarer superpixels
         kernel_size: Positive = 2.0,  # quickshift: the Gaussian's width; larger gives fewer superpixels
         max_dist: Positive = 6.0,  # quickshift: the cut-off distance
         ratio: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5,  # quickshift: colour against position
         # a removed superpixel: its mean colour, or this value, or one value per channel (in the model's input
         # space, where 0 is the training mean when the run standardises)
         fill: Literal["mean"] | float | list[float] = "mean",
         samples: Annotated[int, Field(ge=2, le=10_000_000)] = 1000,
         batch_size: Annotated[int, Field(ge=1)] | None = None,  # sub-images per forward pass; None: from CACHE_BYTES
         kernel_width: Positive = 0.25,  # nu
         surrogate: Literal["lasso", "top_k"] = "lasso",
         alpha: Annotated[float, Field(ge=0.0)] = 0.01,  # the surrogate's regularisation (lasso: L1; top_k: ridge)
         top_k: Annotated[int, Field(ge=1)] = 5,  # top_k: how many superpixels the surrogate keeps
         seed: int = 0) -> Explanation:
    image = x.dim() == 4
    if image:
        segments = segments or min(50, max(1, x.shape[-2] * x.shape[-1] // 4))  # small images: about 2x2 pixels each
        labels = superpixels(x, segmentation, segments, compactness, kernel_size, max_dist, ratio, seed)
        removed = mean_fill(x, labels) if fill == "mean" else colour(x, fill)
    else:  # a table: each feature is a "superpixel"; a removed feature takes the training mean (0 when standardised)
        labels = torch.arange(x.shape[1], device=x.device)
        removed = torch.zeros_like(x) if fill == "mean" else colour(x, fill)
    features = int(labels.max()) + 1
    batch_size = batch_size or batch_for(model, x, samples)
    generator = torch.Generator().manual_seed(seed)
    binary = torch.randint(0, 2, (samples, features), generator=generator)
    binary[0] = 1  # the unperturbed input itself anchors the surrogate at the prediction being explained
    scores = class_scores(model, x, removed, labels, binary.to(x.device), target, batch_size)
    weights = kernel((binary == 0).sum(dim=1), features, kernel_width)
    with blas().limit(limits=1, user_api="blas"):  # tiny matrices: BLAS threads only fight PyTorch's spinning ones
        coef, intercept, r2 = fit(binary.double().numpy(), scores.numpy(), weights.numpy(), surrogate, alpha, top_k)
    coef_t = torch.as_tensor(coef, dtype=torch.float32, device=x.device)
    pixels = torch.bincount(labels.flatten(), minlength=features)
    order = np.argsort(-np.abs(coef), kind="stable")
    name = "superpixel" if image else "feature"
    ranking: list[dict[str, Any]] = [{name: int(j), "weight": float(coef[j]), **({"pixels": int(pixels[j])} if image else {})}
                                     for j in order if coef[j] != 0]
    params = {"segmentation": segmentation if image else "one per feature", "superpixels": features,
              "fill": fill, "samples": samples, "batch_size": batch_size, "kernel_width": kernel_width,
              "surrogate": surrogate, "alpha": alpha, "seed": seed, "intercept": intercept, "surrogate_r2": r2}
    if image:
        params.update({"segments": segments, "compactness": compactness} if segmentation == "slic"
                      else {"kernel_size": kernel_size, "max_dist": max_dist, "ratio": ratio})
    if surrogate == "top_k":
        params["top_k"] = top_k
    return Explanation(coef_t[labels], "map" if image else "features", params,
                       extras={"segments": labels, "weights": coef_t, "samples": binary.to(torch.uint8),
                               "sample_weights": weights, "scores": scores},
                       ranking=ranking)
