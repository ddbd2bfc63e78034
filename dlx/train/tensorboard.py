"""What a run writes to TensorBoard besides scalars: the model graph, sample inputs and hparams."""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.tensorboard.summary import hparams

from dlx.config import Config
from dlx.data.base import RECONSTRUCTION, Splits
from dlx.models.modes import evaluating

HPARAM_SECTIONS = ("data", "model", "objective", "loss", "optimizer", "schedule", "train")


def log_model_and_data(writer, model: nn.Module, data: Splits, graph_input: Callable[[Tensor], Tensor]) -> None:
    """Training images in a grid, and the model's graph traced on `graph_input` of two examples (what the model's
    forward takes: the examples themselves, or a generator's noise)."""
    from torchvision.utils import make_grid  # torchvision's import costs as much as a training epoch of digits

    x = data.first("train", 64)[0]
    if data.spec.is_image:
        # normalize=True rescales the standardised pixels to [0, 1] for display
        writer.add_image("data/train_samples", make_grid(x.float().cpu(), nrow=8, normalize=True, scale_each=True))
    # tracing runs the model: in eval mode it changes no batch-norm statistics and draws no dropout
    with evaluating(model), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # add_graph traces with torch.jit, which warns of its future
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # and of Python-side shape checks (RNNs, attention)
        warnings.filterwarnings("ignore", "The input to trace is already a ScriptModule")
        # traced here without check_trace (a second run, compared with the first): the graph is all TensorBoard
        # needs, in half the time; add_graph takes the traced module as it is
        with torch.random.fork_rng(devices=[]):  # a generator's noise for the trace: training's draws stay as they are
            example = graph_input(x[:2])
        writer.add_graph(torch.jit.trace(model, example, check_trace=False), example)


def log_reconstructions(writer, model: nn.Module, data: Splits, step: int) -> None:
    """Autoencoders on images: 16 validation images (top two rows) above their reconstructions (bottom two)."""
    if data.spec.task != RECONSTRUCTION or not data.spec.is_image:
        return
    from torchvision.utils import make_grid

    x = data.first("val", 16)[0]
    with evaluating(model):
        out = model(x)
    # one scale for both halves, so a washed-out reconstruction looks washed out
    writer.add_image("reconstructions/val", make_grid(torch.cat([x, out]).float().cpu(), nrow=8, normalize=True), step)


def flat_hparams(config: Config) -> dict[str, Any]:
    """config sections as 'optimizer.lr' -> 0.01; values TensorBoard cannot show become strings."""
    out: dict[str, Any] = {"seed": config.seed}
    for section, body in config.to_dict().items():
        if section in HPARAM_SECTIONS:
            for key, value in body.items():
                out[f"{section}.{key}"] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out


def log_hparams(writer, config: Config, final: dict[str, dict[str, float]]) -> None:
    """The run's settings with its final metrics, so runs compare in TensorBoard's HParams dashboard."""
    metrics = {f"hparam/{split}_{name}": value for split, values in final.items() for name, value in values.items()}
    experiment, start, end = hparams(flat_hparams(config), metrics)
    for summary in (experiment, start, end):
        writer.file_writer.add_summary(summary)
    for tag, value in metrics.items():
        writer.add_scalar(tag, value)
    writer.flush()
