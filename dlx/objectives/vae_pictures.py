"""The pictures of a trained VAE, written when its training ends (on the validation split) and by `dlx evaluate` (on
the split it evaluates): images of the split beside their reconstructions, a grid of samples from the prior, a
traversal of each latent dimension and, for a 2-D latent, the split's codes coloured by class."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from dlx.data.base import CLASSIFICATION, Splits
from dlx.models.generative import BATCH, pixels, sample
from dlx.models.modes import evaluating

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RECONSTRUCTED = 16  # images shown above their reconstructions, in two pairs of rows
SAMPLES = 64  # samples in the grid, 8 rows of 8
SEED = 0  # the grid's codes: the same pictures every time
TRAVERSED = 16  # latent dimensions drawn in the traversal at most
STEPS = torch.linspace(-3, 3, 9)  # a traversal's values of one dimension, in the prior's standard deviations


def figures(model: nn.Module, data: Splits, split: str, title: str) -> dict[str, Figure]:
    """name -> figure: reconstructions-<split>, samples, traversal, latent_map-<split> (a 2-D latent); images only
    for image data."""
    from dlx import plots  # matplotlib only once a figure is drawn

    x, y = data[split]
    with evaluating(model), torch.no_grad():
        means = torch.cat([model.encode(x[i:i + BATCH])[0] for i in range(0, len(x), BATCH)])  # (N, latent)
        made: dict[str, Figure] = {}
        if data.spec.is_image:
            shown = x[:RECONSTRUCTED]
            made[f"reconstructions-{split}"] = _reconstructions(shown, model.decode(means[:len(shown)]), data, split,
                                                                title)
            grid = pixels(sample(model, SAMPLES, SEED, x.device), data.standardizer)
            made["samples"] = plots.image_rows_figure([grid[i:i + 8] for i in range(0, SAMPLES, 8)], [],
                                                      f"{title}\n{SAMPLES} samples from the prior N(0, I)")
            made["traversal"] = _traversal(model, means.shape[1], data, x.device, title)
    if means.shape[1] == 2:
        classes = data.spec.class_names if data.spec.task == CLASSIFICATION else ()
        made[f"latent_map-{split}"] = plots.latent_map_figure(
            means.cpu().numpy(), y.cpu().numpy(), classes, f"{title}\nthe {split} split's codes (means of q(z|x))")
    return made


def _reconstructions(x: Tensor, decoded: Tensor, data: Splits, split: str, title: str) -> Figure:
    from dlx import plots

    inputs, outputs = pixels(x, data.standardizer), pixels(decoded, data.standardizer)
    half = (len(inputs) + 1) // 2
    rows = [inputs[:half], outputs[:half], inputs[half:], outputs[half:]]
    kept = [(row, label) for row, label in zip(rows, ["input", "reconstruction"] * 2) if len(row)]
    return plots.image_rows_figure([row for row, _ in kept], [label for _, label in kept], f"{title}\n{split} images "
                                   "above their reconstructions (decoded from the codes' means)")


def _traversal(model: nn.Module, latent: int, data: Splits, device: torch.device, title: str) -> Figure:
    from dlx import plots

    dimensions = min(latent, TRAVERSED)
    z = torch.zeros(dimensions, len(STEPS), latent, device=device)
    for d in range(dimensions):
        z[d, :, d] = STEPS.to(device)
    images = pixels(model.decode(z.flatten(0, 1)), data.standardizer).reshape(dimensions, len(STEPS),
                                                                              *data.spec.in_shape[1:], -1)
    shown = f"the first {dimensions} of {latent}" if dimensions < latent else f"all {latent}"
    return plots.image_rows_figure(list(images), [f"z{d + 1}" for d in range(dimensions)],
                                   f"{title}\neach latent dimension ({shown}) from -3 to 3, the others at 0",
                                   column_labels=[f"{v:g}" for v in STEPS.tolist()])
