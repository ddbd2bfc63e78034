"""The worst examples as cards for a gallery: the input as a person sees it (an image un-standardised, a table
row as text), the label and the prediction, and beside an image GradCAM's map of the predicted class when the
network has a conv layer and dlx.explain provides GradCAM."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dlx import registry
from dlx.errors import DlxError
from dlx.run.trained import Trained

MAX_FEATURES = 12  # lines of a table row shown on a card


@dataclass
class Card:
    caption: str
    image: np.ndarray | None = None  # (H, W) grey or (H, W, 3), in [0, 1]
    text: str | None = None  # a table row
    heat: np.ndarray | None = None  # (H, W) GradCAM map at the image's size, in [0, 1]


def cards(rows: list[dict[str, Any]], members: list[Trained], split: str) -> list[Card]:
    trained = members[0]  # every member saw the same examples
    x = trained.data[split][0]
    standardizer = trained.data.standardizer
    explain = gradcam() if len(members) == 1 else None  # a committee has no single network to explain
    made = []
    for row in rows:
        sample = x[row["index"]][None]  # (1, *in_shape) as the model sees it
        shown = standardizer.invert(sample) if standardizer else sample
        card = Card(_caption(row))
        if sample.dim() == 4:
            card.image = _picture(shown[0])
            if explain is not None:
                card.heat = _heat(explain, trained, sample, row)
        else:
            card.text = "\n".join(f"x{j} = {v:.3g}" for j, v in enumerate(shown[0].flatten().tolist()[:MAX_FEATURES]))
        made.append(card)
    return made


def neighbour_cards(rows: list[dict[str, Any]], trained: Trained, split: str) -> list[Card]:
    """Each query's card, then its nearest neighbours' (rows of dlx evaluate's embedding report), nearest first."""
    x, standardizer = trained.data[split][0], trained.data.standardizer
    made = []
    for row in rows:
        y = trained.data[split][1]
        captions = [f"query #{row['query']}\nclass {row['label']}"] + [
            f"#{n}: class {trained.spec.class_names[int(y[n])]}\n{'same' if same else 'OTHER'}"
            for n, same in zip(row["nearest"], row["same_class"])]
        for index, caption in zip([row["query"], *row["nearest"]], captions):
            sample = x[index][None]
            shown = (standardizer.invert(sample) if standardizer else sample)[0]
            made.append(Card(caption, image=_picture(shown)) if sample.dim() == 4 else
                        Card(caption, text="\n".join(f"x{j} = {v:.3g}" for j, v in
                                                      enumerate(shown.flatten().tolist()[:MAX_FEATURES]))))
    return made


def gradcam():
    """GradCAM from the explainers' registry, or None where it has none."""
    return registry.explainers.get("gradcam") if "gradcam" in registry.explainers else None


def _caption(row: dict[str, Any]) -> str:
    if "probability" in row:
        return f"#{row['index']}: true {row['label']}\npredicted {row['predicted']} (p {row['probability']:.2f})"
    label, predicted = (", ".join(f"{v:.3g}" for v in row[k]) for k in ("label", "predicted"))
    return f"#{row['index']}: true {label}\npredicted {predicted}"


def _picture(image: Tensor) -> np.ndarray:
    """(C, H, W) -> (H, W) or (H, W, 3) scaled to [0, 1] for display."""
    image = image.detach().cpu().float()
    image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-12)
    return image[0].numpy() if image.shape[0] == 1 else image[:3].permute(1, 2, 0).numpy()


def _heat(explain, trained: Trained, sample: Tensor, row: dict[str, Any]) -> np.ndarray | None:
    """GradCAM's map of the predicted class at the image's size, or None when the network has no conv layer."""
    from dlx.explain.base import default_sigma, to_input_size

    target = trained.data.spec.class_names.index(row["predicted"])
    size = tuple(sample.shape[2:])
    try:
        with torch.enable_grad():
            raw = explain.build(trained.model, sample, target).raw
    except DlxError:
        return None
    heat = to_input_size(raw, size, default_sigma(size)).cpu()
    return (heat / heat.max().clamp_min(1e-12)).numpy()
