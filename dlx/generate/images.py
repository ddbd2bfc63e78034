"""`dlx generate` on a run whose model draws images, a VAE's or a GAN's (both keep the protocol sample_noise(n, device,
generator) and decode(z)): a grid of samples from the prior, or for a VAE an interpolation through its latent space
between two test images."""
from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from dlx import limits, registry
from dlx.config import load as load_config
from dlx.errors import DlxError
from dlx.models.generative import pixels, sample
from dlx.models.modes import evaluating
from dlx.run.records import check_figure_file
from dlx.run.trained import Trained, open_trained

GRID = 64  # samples of a grid unless --num-samples says
STEPS = 10  # codes along an interpolation, both ends included


@dataclass
class Options:
    num_samples: int = GRID
    seed: int | None = None  # None: a fresh seed, reported so the grid can be repeated
    interpolate: tuple[int, int] | None = None  # indices of two test images
    out: Path | None = None  # None: <run name>-samples.png or <run name>-interpolation.png here
    checkpoint: str = "best"


def draws_images(run_path: str | Path) -> bool:
    """Whether the run's model keeps the generative protocol (sample_noise and decode), read from its config only;
    False for a folder without one (text generation checks its counts, then says the folder is no run)."""
    config = Path(run_path) / "config.yaml"
    if not config.is_file():
        return False
    entry = registry.models.get(load_config(config).model.name)
    return all(callable(getattr(entry.obj, name, None)) for name in ("sample_noise", "decode"))


@torch.no_grad()
def interpolation(model: nn.Module, a: Tensor, b: Tensor, steps: int = STEPS) -> Tensor:
    """Decoded codes on the line from a's mean code to b's, both images given as (1, *x): (steps, *x)."""
    with evaluating(model):
        (start, _), (end, _) = model.encode(a), model.encode(b)
        t = torch.linspace(0, 1, steps, device=a.device)[:, None]  # (steps, 1)
        return model.decode(start + t * (end - start))


def generate(run_path: str | Path, options: Options, note: Callable[[str], None] = lambda text: None) -> Path:
    """Write the grid (or the interpolation) of a run's samples; returns the file written."""
    from dlx import plots  # matplotlib only once a figure is drawn

    limits.check("--num-samples", options.num_samples, limits.SAMPLES, "samples")
    if options.out is not None:
        check_figure_file(options.out)
    trained = open_trained(run_path, options.checkpoint)
    if not trained.spec.is_image:
        raise DlxError(f"dlx generate draws images; {trained.run.path}'s samples have shape {trained.spec.in_shape}")
    title = f"{trained.run.name} ({trained.config.model.name}, {options.checkpoint} checkpoint)"
    if options.interpolate is not None:
        figure = _interpolation_figure(trained, *options.interpolate, title)
        out = options.out or Path(f"{trained.run.name}-interpolation.png")
    else:
        seed = random.randrange(2**31) if options.seed is None else options.seed
        if options.seed is None:
            note(f"seed {seed} (--seed {seed} repeats these samples)")
        images = pixels(sample(trained.model, options.num_samples, seed, trained.device), trained.standardizer)
        columns = math.ceil(math.sqrt(len(images)))
        figure = plots.image_rows_figure([images[i:i + columns] for i in range(0, len(images), columns)], [],
                                         f"{title}\n{len(images)} samples from the prior, seed {seed}")
        out = options.out or Path(f"{trained.run.name}-samples.png")
    return plots.save(figure, out, dpi=120)


def _interpolation_figure(trained: Trained, a: int, b: int, title: str):
    from dlx import plots

    if not callable(getattr(trained.model, "encode", None)):
        raise DlxError(f"--interpolate needs a model with an encoder (a VAE); {trained.run.path} trains "
                       f"'{trained.config.model.name}', which only decodes")
    x = trained.data["test"][0]
    for index in (a, b):
        if not 0 <= index < len(x):
            raise DlxError(f"--interpolate {a} {b}: the test split has {len(x)} images (indices 0..{len(x) - 1})")
    decoded = interpolation(trained.model, x[a:a + 1], x[b:b + 1])
    images = pixels(torch.cat([x[a:a + 1], decoded, x[b:b + 1]]), trained.standardizer)
    labels = [f"test {a}", *(f"{t:.2g}" for t in np.linspace(0, 1, len(decoded))), f"test {b}"]
    return plots.image_rows_figure([images], [""], f"{title}\nfrom test image {a} to {b} through the latent "
                                   "space (the codes' means)", column_labels=labels)
