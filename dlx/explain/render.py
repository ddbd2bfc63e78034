"""The only place that draws explanations (matplotlib, through dlx.plots): arrays in, figures out."""
from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from skimage.segmentation import mark_boundaries

from dlx.plots import lay_out, plt


def _show_image(ax: Axes, image: np.ndarray, title: str) -> None:
    """An (H, W, C) image in [0, 1]: grey when C is 1."""
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def _map_style(values: np.ndarray, signed: bool | None = None) -> dict:
    """Signed maps on a diverging scale centred at 0; non-negative ones from dark (0) to bright (largest).
    `signed` (default: whether `values` has a negative value) keeps the views of one map on one colour map."""
    if values.min() < 0 if signed is None else signed:
        peak = max(float(np.abs(values).max()), 1e-12)
        return {"cmap": "RdBu_r", "vmin": -peak, "vmax": peak}
    return {"cmap": "inferno", "vmin": 0.0, "vmax": max(float(values.max()), 1e-12)}


def _show_map(figure: Figure, ax: Axes, values: np.ndarray, title: str, signed: bool) -> None:
    shown = ax.imshow(values, interpolation="nearest", **_map_style(values, signed))
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)


def _grey(image: np.ndarray) -> np.ndarray:
    return image.mean(axis=-1)


def _with_borders(image: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Superpixel borders in yellow, drawn on the image enlarged (each pixel a block) so they stay thin."""
    scale = max(1, 256 // max(segments.shape))
    big = np.kron(np.repeat(image, 3 // image.shape[-1], -1), np.ones((scale, scale, 1)))
    return mark_boundaries(big, np.kron(segments, np.ones((scale, scale), dtype=segments.dtype)), color=(1, 1, 0))


def panel(image: np.ndarray, raw: np.ndarray, upsampled: np.ndarray, title: str,
          segments: np.ndarray | None = None) -> Figure:
    """The course's four views: the input, the raw map, the map rescaled to the input and smoothed, the overlay,
    the three views of the map on one colour map (smoothing can leave a signed map without its negative values).
    LIME's superpixel borders are drawn on the input."""
    signed = bool(raw.min() < 0 or upsampled.min() < 0)
    figure, axes = plt.subplots(1, 4, figsize=(13, 3.4))
    if segments is None:
        _show_image(axes[0], image, "input")
    else:
        _show_image(axes[0], _with_borders(image, segments), "input and superpixels")
    _show_map(figure, axes[1], raw, f"raw map {raw.shape[0]}x{raw.shape[1]}", signed)
    _show_map(figure, axes[2], upsampled, "rescaled to the input, smoothed", signed)
    axes[3].imshow(_grey(image), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[3].imshow(upsampled, alpha=0.55, interpolation="bilinear", **_map_style(upsampled, signed))
    axes[3].set_title("overlay", fontsize=9)
    axes[3].axis("off")
    figure.suptitle(title, fontsize=10)
    figure.subplots_adjust(left=0.01, right=0.97, bottom=0.03, top=0.84 - 0.07 * title.count("\n"), wspace=0.25)
    return figure


def bars(values: np.ndarray, names: list[str], title: str) -> Figure:
    """Per-feature attributions of a table model, largest magnitude on top."""
    order = np.argsort(np.abs(values))
    figure, ax = plt.subplots(figsize=(6, 0.9 + 0.3 * len(values)))
    ax.barh([names[i] for i in order], values[order], color=["tab:red" if v > 0 else "tab:blue" for v in values[order]])
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_title(title, fontsize=10)
    figure.subplots_adjust(left=0.2, right=0.97)
    return figure


def picture(image: np.ndarray, title: str) -> Figure:
    """One image, e.g. a class visualisation."""
    figure, ax = plt.subplots(figsize=(3.2, 3.4))
    _show_image(ax, image, title)
    return figure


def filter_grid(weights: np.ndarray, title: str) -> Figure:
    """(O, I, kh, kw) filters as small images: colour for 3 input channels, else their mean in grey."""
    count = weights.shape[0]
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(0.8 * columns + 0.4, 0.8 * rows + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= count:
            continue
        w = weights[i]
        w = (w - w.min()) / max(float(w.max() - w.min()), 1e-12)  # each filter on its own scale
        if w.shape[0] == 3:
            ax.imshow(w.transpose(1, 2, 0), interpolation="nearest")
        else:
            ax.imshow(w.mean(axis=0), cmap="gray", interpolation="nearest")
    figure.suptitle(title, fontsize=10)
    figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=1 - 0.45 / figure.get_figheight())
    return figure


def comparison(image: np.ndarray, maps: dict[str, np.ndarray], title: str) -> Figure:
    """The input and every method's rescaled map side by side, each overlaid on the input."""
    figure, axes = plt.subplots(1, len(maps) + 1, figsize=(2.6 * (len(maps) + 1), 2.9))
    _show_image(axes[0], image, "input")
    for ax, (name, values) in zip(axes[1:], maps.items()):
        ax.imshow(_grey(image), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.imshow(values, alpha=0.6, interpolation="bilinear", **_map_style(values))
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    figure.suptitle(title, fontsize=10)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.84, wspace=0.08)
    return figure


def sequence_panel(sequence: np.ndarray, values: np.ndarray, title: str) -> Figure:
    """A sequence (T, F) and a method's map of it (T, F) as heat maps, time steps along, features down."""
    return _steps([("input", sequence), ("map", values)], title)


def sequence_comparison(sequence: np.ndarray, maps: dict[str, np.ndarray], title: str) -> Figure:
    """A sequence and every method's map of it, one heat map under the other on the same time axis."""
    return _steps([("input", sequence), *maps.items()], title)


ANNOTATED_CELLS = 400  # up to this many steps x features the input's values are written in its cells


def _steps(rows: list[tuple[str, np.ndarray]], title: str) -> Figure:
    """Heat maps of (T, F) arrays on one time axis: the first is the input (its own colour map, its values written
    in when they fit), the others maps on _map_style's scales."""
    steps, features = rows[0][1].shape
    height = min(2.5, 0.5 + 0.15 * features)
    figure, axes = plt.subplots(len(rows), 1, figsize=(min(16.0, 3.0 + 0.35 * steps), 0.9 + height * len(rows)),
                                sharex=True, squeeze=False)
    for i, (ax, (name, values)) in enumerate(zip(axes[:, 0], rows)):
        style = {"cmap": "viridis"} if i == 0 else _map_style(values)
        shown = ax.imshow(values.T, aspect="auto", interpolation="nearest", **style)
        figure.colorbar(shown, ax=ax, fraction=0.03, pad=0.01)
        ax.set_ylabel(name, fontsize=9)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=min(features, 8)))
        if i == 0 and steps * features <= ANNOTATED_CELLS:
            middle = (values.min() + values.max()) / 2  # viridis is bright above it: dark text there
            for (t, f), value in np.ndenumerate(values):
                ax.text(t, f, f"{value:.2g}", ha="center", va="center", fontsize=6,
                        color="black" if value > middle else "white")
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1, 0].set_xlabel("time step (rows: features)", fontsize=9)
    figure.suptitle(title, fontsize=10)
    lay_out(figure)
    return figure


def attention(maps: dict[str, np.ndarray], title: str) -> Figure:
    """Attention weights (rows attending, columns attended to) as heat maps side by side, on one scale [0, 1]."""
    figure, axes = plt.subplots(1, len(maps), figsize=(0.6 + 4.2 * len(maps), 4.0), squeeze=False)
    for ax, (name, weights) in zip(axes[0], maps.items()):
        shown = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
        figure.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("position attended to", fontsize=9)
        ax.set_ylabel("attending step", fontsize=9)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(integer=True))
    figure.suptitle(title, fontsize=10)
    return figure
