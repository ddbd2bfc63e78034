"""The figures every run gets in its folder when training ends: its learning curves, for a classifier of two inputs
(the course's toy sets: xor, moons, circles, spirals, blobs) its decision regions over the training points, and the
pictures its objective draws (a VAE's samples)."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from dlx.config import Config
from dlx.data.base import CLASSIFICATION, DataSpec, Splits
from dlx.models.modes import evaluating
from dlx.objectives.base import Objective
from dlx.run.folder import Run

LEARNING_CURVES = "learning_curves.png"
DECISION_REGIONS = "decision_regions.png"
GRID = 200  # points per side of the plane's mesh
MARGIN = 0.1  # of the points' range, added on every side


def has_a_plane(spec: DataSpec) -> bool:
    return spec.task == CLASSIFICATION and spec.in_shape == (2,)


def write(run: Run, model: nn.Module, data: Splits, config: Config, best_epoch: int,
          objective: Objective) -> list[Path]:
    from dlx import plots  # matplotlib only once a figure is drawn

    title = f"{run.name}: {config.model.name} on {config.data.name}"
    figures = {LEARNING_CURVES: plots.learning_curve_figure(run.history(), config.train.monitor, best_epoch, title)}
    if has_a_plane(data.spec) and config.model.embedding_head is None:  # an embedding answers with no class to draw
        grid, regions = decision_regions(model, data, config.train.eval_batch_size)
        x, y = data["train"]
        figures[DECISION_REGIONS] = plots.decision_regions_figure(
            grid, regions, _in_data_units(data, x[:]).cpu().numpy(), y.cpu().numpy(), data.spec.class_names,
            f"{title}\nthe best model's classes, the training points")
    figures.update({f"{name}.png": figure for name, figure in objective.pictures(model, data, "val", title).items()})
    return [plots.save(figure, run.path / name) for name, figure in figures.items()]


def decision_regions(model: nn.Module, data: Splits, batch_size: int) -> tuple[tuple, object]:
    """The class the model answers at each point of a mesh over the training points, in the data's own units
    (the model reads them standardised, as it was trained)."""
    x = data["train"][0][:]
    raw = _in_data_units(data, x)
    low, high = raw.min(dim=0).values, raw.max(dim=0).values
    pad = MARGIN * (high - low).clamp_min(1e-6)
    axes = [torch.linspace(float(low[i] - pad[i]), float(high[i] + pad[i]), GRID, device=x.device) for i in range(2)]
    x1, x2 = torch.meshgrid(*axes, indexing="xy")  # (GRID, GRID) each
    plane = torch.stack([x1.flatten(), x2.flatten()], dim=1)
    inputs = data.standardizer(plane) if data.standardizer else plane
    with evaluating(model):
        classes = torch.cat([model(inputs[i : i + batch_size]).argmax(dim=1) for i in range(0, len(inputs), batch_size)])
    return (x1.cpu().numpy(), x2.cpu().numpy()), classes.view(GRID, GRID).cpu().numpy()


def _in_data_units(data: Splits, x: torch.Tensor) -> torch.Tensor:
    """`x`: the rows themselves (a streamed split's `[:]` reads them from disk)."""
    return data.standardizer.invert(x) if data.standardizer else x
