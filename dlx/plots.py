"""Figures that dlx writes to run folders (matplotlib, without a display)."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from dlx.atomic import write_atomic  # noqa: E402
from dlx.errors import DlxError  # noqa: E402


def lay_out(figure: Figure) -> None:
    """matplotlib's tight layout, without its warning where a title or labels are too long for their panel: the
    figure is still drawn as laid out, and two lines of matplotlib's source on stderr told of a fault there was not."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Tight layout not applied", UserWarning)
        figure.tight_layout()


def confusion_matrix_figure(matrix: list[list[int]], class_names: tuple[str, ...], title: str) -> Figure:
    n = len(matrix)
    figure, ax = plt.subplots(figsize=(max(4.5, 1.0 + 0.5 * n), max(3.5, 0.8 + 0.5 * n)))  # room for the title
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=90 if n > 10 else 0)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            if count:
                ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                        color="white" if count > peak / 2 else "black")
    lay_out(figure)
    return figure


def close(figure: Figure) -> None:
    plt.close(figure)


def figure_kind(path: Path) -> str:
    """The file type a figure's name asks for ('' for none: PNG), one matplotlib writes."""
    kind = path.suffix.lstrip(".").lower()
    if kind and kind not in FigureCanvasAgg.get_supported_filetypes():
        raise DlxError(f"{path}: matplotlib cannot write .{kind} files; give a name ending in .png, .pdf or .svg")
    return kind


def save(figure: Figure, path: Path, dpi: int = 100, crop: bool = False) -> Path:
    """Lay the figure out, write it (creating the folder) and free it. crop: keep the figure's own layout and cut
    the image to what is drawn, for figures laid out elsewhere (optuna's). Every figure file dlx writes goes through
    here or through save_pixels: atomically, so a kill leaves no half image, and a symbolic link planted at `path`
    (a run folder from elsewhere) is replaced, never written through."""
    try:
        kind = figure_kind(path)
    except DlxError:
        close(figure)
        raise
    if not crop:
        lay_out(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=dpi, format=kind or None, bbox_inches="tight" if crop else None)
    close(figure)
    return _write(path, buffer.getvalue())


def pixels(figure: Figure) -> np.ndarray:
    """Draw the figure once, as it is laid out, and free it: (H, W, 3) uint8, for a PNG file and TensorBoard alike."""
    figure.canvas.draw()
    rgb = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    close(figure)
    return rgb


def save_pixels(rgb: np.ndarray, path: Path) -> Path:
    """An (H, W, 3) uint8 image (see `pixels`) as a PNG file, written as `save` writes."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return _write(path, buffer.getvalue())


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    return path


def roc_figure(binary: dict, class_names: tuple[str, ...], title: str) -> Figure:
    """The ROC curve of class 1 against class 0, with the chosen threshold's operating point."""
    figure, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(binary["roc"]["fpr"], binary["roc"]["tpr"], label=f"AUC {binary['auc']:.3f}")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="chance")
    ax.plot(binary["false_positive_rate"], binary["true_positive_rate"], "o", color="C3",
            label=f"threshold {binary['threshold']:g}")
    ax.set_xlabel(f"false positive rate ('{class_names[0]}' called '{class_names[1]}')")
    ax.set_ylabel(f"true positive rate ('{class_names[1]}' found)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="lower right")
    lay_out(figure)
    return figure


def reject_figure(rows: list[dict], title: str) -> Figure:
    """The reject option: error rate among the answered examples against the rejection rate, one point per margin."""
    answered = [r for r in rows if r["error_rate"] is not None]
    figure, ax = plt.subplots(figsize=(5, 4))
    ax.plot([r["rejection_rate"] for r in answered], [r["error_rate"] for r in answered], "o-")
    for r in answered:
        ax.annotate(f"{r['margin']:g}", (r["rejection_rate"], r["error_rate"]), fontsize=7,
                    textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("rejection rate")
    ax.set_ylabel("error rate among answered")
    ax.set_title(f"{title}\n(labels: margins)", fontsize=9)
    lay_out(figure)
    return figure


def _columns(outputs, y):
    """One panel per target column (at most four)."""
    return [(outputs[:, j], y[:, j], f"target {j}" if y.shape[1] > 1 else "target") for j in range(min(y.shape[1], 4))]


def predicted_vs_true_figure(outputs, y, title: str) -> Figure:
    columns = _columns(outputs, y)
    figure, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 4), squeeze=False)
    for ax, (predicted, true, name) in zip(axes[0], columns):
        low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
        ax.scatter(true, predicted, s=8, alpha=0.6)
        ax.plot([low, high], [low, high], linestyle=":", color="grey", label="predicted = true")
        ax.set_xlabel(f"true {name}")
        ax.set_ylabel(f"predicted {name}")
        ax.legend(loc="upper left", fontsize=8)
    figure.suptitle(title, fontsize=9)
    lay_out(figure)
    return figure


def residuals_figure(outputs, y, title: str) -> Figure:
    columns = _columns(outputs, y)
    figure, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 4), squeeze=False)
    for ax, (predicted, true, name) in zip(axes[0], columns):
        ax.scatter(predicted, predicted - true, s=8, alpha=0.6)
        ax.axhline(0, linestyle=":", color="grey")
        ax.set_xlabel(f"predicted {name}")
        ax.set_ylabel("residual (predicted - true)")
    figure.suptitle(title, fontsize=9)
    lay_out(figure)
    return figure


def gallery_figure(cards: list, title: str, per_row: int = 4, heading: str = "largest losses first") -> Figure:
    """Cards (dlx.gallery.Card) in a grid: each an image or a table row, with GradCAM's overlay beside an image."""
    width = 2 if any(c.heat is not None for c in cards) else 1  # panels per card
    rows = -(-len(cards) // per_row)
    cols = min(len(cards), per_row) * width
    figure, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, card in enumerate(cards):
        r, c = divmod(i, per_row)
        ax = axes[r, c * width]
        if card.image is not None:
            ax.imshow(card.image, cmap="gray" if card.image.ndim == 2 else None)
        else:
            ax.text(0, 1, card.text, va="top", ha="left", family="monospace", fontsize=7, transform=ax.transAxes)
        ax.set_title(card.caption, fontsize=7)
        if card.heat is not None:
            overlay = axes[r, c * width + 1]
            overlay.imshow(card.image, cmap="gray" if card.image.ndim == 2 else None)
            overlay.imshow(card.heat, cmap="jet", alpha=0.45)
            overlay.set_title("GradCAM (predicted)", fontsize=7)
    figure.suptitle(f"{title}: {heading}", fontsize=9)
    lay_out(figure)
    return figure


def _per_epoch(history: list[dict], key: str) -> list[tuple[int, float]]:
    """(epoch, value) of one logged key, from a run's metrics.jsonl lines."""
    return [(h["epoch"], h[key]) for h in history if key in h and "epoch" in h]


def learning_curves_figure(histories: dict[str, list[dict]], keys: list[str]) -> Figure:
    """Per-epoch curves of several runs overlaid: one panel per logged key, one line per run."""
    figure, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name, history in histories.items():
            points = _per_epoch(history, key)
            if points:
                ax.plot(*zip(*points), marker=".", label=name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole: no tick at 1.5
        ax.set_title(key, fontsize=10)
        ax.legend(fontsize=8)
    lay_out(figure)
    return figure


LOSSES = ("train/epoch_loss", "val/loss")


def learning_curve_figure(history: list[dict], monitor: str, best_epoch: int, title: str) -> Figure:
    """One run's learning curves as the course draws them: the training and validation loss per epoch, beside them
    each term the loss is made of (a VAE's reconstruction and KL, train and val) and the monitored metric when it is
    not one of those; the epoch of the best model is marked."""
    terms = [k.removeprefix("train/epoch_") for k in (history[0] if history else {})
             if k.startswith("train/epoch_") and k != LOSSES[0]]
    panels = {"loss": LOSSES, **{t: (f"train/epoch_{t}", f"val/{t}") for t in terms}}  # title -> keys drawn
    if all(monitor not in keys for keys in panels.values()):
        panels[monitor] = (monitor,)
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (name, keys) in zip(axes[0], panels.items()):
        for key in keys:
            points = _per_epoch(history, key)
            if points:
                ax.plot(*zip(*points), marker=".", label=key)
        if best_epoch:
            ax.axvline(best_epoch, linestyle=":", color="grey", label=f"best ({monitor}): epoch {best_epoch}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=8)
    figure.suptitle(title, fontsize=9)
    return figure


def decision_regions_figure(grid: tuple, regions, points, labels, class_names: tuple[str, ...], title: str) -> Figure:
    """A classifier of two inputs: the class it answers over the plane (`regions`, one per point of the `grid`'s
    (x1, x2) mesh), its decision boundary, and the training points coloured by their true class."""
    k = len(class_names)
    colours = matplotlib.colors.ListedColormap([plt.get_cmap("tab10")(i % 10) for i in range(k)])
    figure, ax = plt.subplots(figsize=(5.5, 5))
    levels = [i - 0.5 for i in range(k + 1)]
    ax.contourf(*grid, regions, levels=levels, cmap=colours, alpha=0.25)
    ax.contour(*grid, regions, levels=levels[1:-1], colors="black", linewidths=0.8)
    for i, name in enumerate(class_names):
        mine = labels == i
        ax.scatter(points[mine, 0], points[mine, 1], s=12, color=colours(i), edgecolors="black", linewidths=0.3,
                   label=name)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc="best")
    return figure


def image_rows_figure(rows: list[np.ndarray], labels: list[str], title: str,
                      column_labels: list[str] | None = None) -> Figure:
    """Rows of images, each (k, H, W, C) in [0, 1] (C 1 or 3), drawn as one mosaic with a pixel of white between
    images: each row named on the left when `labels` are given, each column below when `column_labels` are. One
    image for any number of samples, so a grid of a thousand draws as fast as a grid of ten."""
    k = max(len(row) for row in rows)
    height, width, channels = rows[0].shape[1:]
    mosaic = np.ones((len(rows) * (height + 1) - 1, k * (width + 1) - 1, channels))
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            mosaic[r * (height + 1):r * (height + 1) + height, c * (width + 1):c * (width + 1) + width] = image
    scale = max(0.35, 0.9 * width / 28)  # inches per image: small images are enlarged, large ones not shrunk
    size = (min(max(6.0, 2 + k * scale), 24), min(1 + len(rows) * scale * height / width, 24))
    figure, ax = plt.subplots(figsize=size)
    ax.imshow(mosaic[..., 0] if channels == 1 else mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    if labels:
        ax.set_yticks([r * (height + 1) + height / 2 for r in range(len(rows))], labels, fontsize=8)
    else:
        ax.set_yticks([])
    if column_labels is None:
        ax.set_xticks([])
    else:
        ax.set_xticks([c * (width + 1) + width / 2 for c in range(len(column_labels))], column_labels, fontsize=7)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(title, fontsize=9)
    return figure


def latent_map_figure(codes: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...], title: str) -> Figure:
    """Two-dimensional codes (N, 2) as points coloured by their class (or in one colour without classes)."""
    figure, ax = plt.subplots(figsize=(6, 5.5))
    if class_names:
        for i, name in enumerate(class_names):
            mine = labels == i
            ax.scatter(codes[mine, 0], codes[mine, 1], s=8, color=plt.get_cmap("tab10")(i % 10), label=name)
        ax.legend(fontsize=8, markerscale=2, loc="best")
    else:
        ax.scatter(codes[:, 0], codes[:, 1], s=8)
    ax.set_xlabel("z1")
    ax.set_ylabel("z2")
    ax.set_title(title, fontsize=9)
    return figure


def word_map_figure(points: np.ndarray, words: list[str], title: str) -> Figure:
    """Words at their 2-D positions (a PCA or t-SNE of their vectors), each written where its point is."""
    figure, ax = plt.subplots(figsize=(12, 10))
    ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.3)
    for (x, y), word in zip(points, words):
        ax.annotate(word, (x, y), fontsize=7, alpha=0.8)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    return figure


LABELLED_TOKENS = 80  # a heat map side names each token up to this many
TOKEN_AXIS_INCHES = 30.0  # and grows with them up to this: a 5,000-letter input drew a 180,000-pixel-wide PNG


def _token_inches(least: float, margin: float, tokens: int) -> float:
    """A heat map side: 0.3 inch a token, within its least size and TOKEN_AXIS_INCHES."""
    return min(TOKEN_AXIS_INCHES, max(least, margin + 0.3 * tokens))


def attention_figure(weights, source: list[str], output: list[str], title: str) -> Figure:
    """An encoder-decoder's attention: one row per output token, one column per source token, each row's weights
    summing to 1 (a reversal draws the anti-diagonal). Spaces are shown as '␣'."""
    def shown(tokens: list[str]) -> list[str]:
        return [t.replace(" ", "␣") for t in tokens]

    figure, ax = plt.subplots(figsize=(_token_inches(3.5, 1.5, len(source)), _token_inches(3.0, 1.2, len(output))))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    if len(source) <= LABELLED_TOKENS:  # longer sequences keep matplotlib's position ticks: labels would overlap
        ax.set_xticks(range(len(source)), shown(source))
    if len(output) <= LABELLED_TOKENS:
        ax.set_yticks(range(len(output)), shown(output))
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    ax.set_title(title, fontsize=9)
    figure.colorbar(image, ax=ax, fraction=0.05, label="attention weight")
    return figure
