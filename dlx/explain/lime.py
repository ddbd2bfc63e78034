"""LIME (COURSE.md): split the image into superpixels P_1..P_l (a table: one per feature); sample binary vectors
x_k in {0,1}^l that keep the superpixels with x_k = 1; record the logit xi_i of each sub-image; fit a sparse linear
model weighted by pi_k = exp(-(1 - sqrt(1 - s_k/l))^2 / (2 nu^2)), s_k = the number of zeros in x_k.

The samples go through the model in batches: building a batch of sub-images is one indexing operation, so the
cost is forward passes, not a Python loop per sample (captum's Lime builds and weighs its samples one by one).
A batch holds as many sub-images as keep the model's largest activation within a core's cache: one batch of all
1000 samples spilled to memory and made a ResNet-20 on 32x32 images 3x slower (see bench/explain_lime.py).
The surrogate is scikit-learn's, the superpixels are scikit-image's.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field
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


def class_scores(model: nn.Module, x: Tensor, fill: Tensor, segments: Tensor, samples: Tensor, target: int,
                 batch_size: int) -> Tensor:
    """xi_target of every sub-image: sample k keeps the pixels whose superpixel j has samples[k, j] = 1."""
    scores = []
    with torch.inference_mode():
        for batch in samples.split(batch_size):
            keep = batch[:, segments].bool()  # (b, H, W) or (b, F)
            if x.dim() == 4:
                keep = keep[:, None]  # the same superpixel in every channel
            scores.append(model(torch.where(keep, x, fill))[:, target])
    return torch.cat(scores).double().cpu()


def fit(samples: np.ndarray, scores: np.ndarray, weights: np.ndarray, surrogate: str, alpha: float,
        top_k: int) -> tuple[np.ndarray, float, float]:
    """The weighted sparse linear surrogate: coefficients (l,), intercept and weighted R^2 on the samples."""
    from sklearn.linear_model import Lasso, Ridge

    if surrogate == "lasso":  # Omega(w) = alpha ||w||_1
        model = Lasso(alpha=alpha).fit(samples, scores, sample_weight=weights)
        return model.coef_, float(model.intercept_), model.score(samples, scores, sample_weight=weights)
    # top_k: the K superpixels with the largest weights in a lightly regularised fit, then a ridge fit on them
    everything = Ridge(alpha=0.01).fit(samples, scores, sample_weight=weights)
    chosen = np.sort(np.argsort(-np.abs(everything.coef_), kind="stable")[:top_k])
    model = Ridge(alpha=alpha).fit(samples[:, chosen], scores, sample_weight=weights)
    coef = np.zeros(samples.shape[1])
    coef[chosen] = model.coef_
    return coef, float(model.intercept_), model.score(samples[:, chosen], scores, sample_weight=weights)


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
