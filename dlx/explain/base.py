"""What every explainer shares: its result (tensors only), input checks and the map at the input's size.

An explainer is a registered function `method(model, x, target, *, settings...) -> Explanation`, where
`x` is one sample as the model sees it, (1, C, H, W) for images, (1, F) for tables or (1, T, F) for sequences, and
`target` is the class i whose logit xi_i (never the softmax) is explained. Drawing is render.py's job.

Its registration says what it can explain: `inputs` (the kinds of input it takes; images only when left out) and
`requires`, a function of the model that returns why the method cannot explain it (None when it can).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlx.errors import DlxError
from dlx.registry import explainers

# map: (h, w) over an image; features: (F,); sequence: (T, F) over time steps x features; image: (C, H, W);
# filters: (O, I, kh, kw); attention: (rows, columns), each row a distribution over the columns
Kind = Literal["map", "features", "sequence", "image", "filters", "attention"]
InputKind = Literal["image", "table", "sequence"]
INPUT_KINDS: dict[int, InputKind] = {3: "image", 1: "table", 2: "sequence"}  # by the dimensions of one sample


@dataclass
class Explanation:
    raw: Tensor  # as `kind` says; a map at the method's own resolution
    kind: Kind
    params: dict[str, Any]  # every setting the method used, resolved (no None left for "automatic")
    extras: dict[str, Tensor] = field(default_factory=dict)  # further arrays worth saving (LIME's segments, ...)
    ranking: list[dict[str, Any]] | None = None  # LIME: superpixels (or features) by decreasing |weight|
    note: str | None = None  # what the reader of the figure must know, e.g. why a map is blank


def input_kind(x: Tensor) -> InputKind:
    """What a batch of samples holds: images (B, C, H, W), table rows (B, F) or sequences (B, T, F)."""
    return INPUT_KINDS[x.dim() - 1]


COURSE_ORDER = ("saliency", "smoothgrad", "gradcam", "occlusion", "lime", "classviz", "filters", "attention")
PLURAL = {"image": "images", "table": "table rows", "sequence": "sequences"}
Requirement = Callable[[nn.Module], str | None]  # why a model cannot be explained by a method; None: it can


def explainer(name: str, description: str, *, inputs: tuple[InputKind, ...] = ("image",),
              requires: Requirement | None = None) -> Callable:
    """Register an explainer that takes `inputs` and, where given, models meeting `requires`; called on anything
    else it raises one line saying why and which methods would do."""
    def decorate(method: Callable[..., Explanation]) -> Callable[..., Explanation]:
        @functools.wraps(method)
        def checked(model: nn.Module, x: Tensor, target: int, **settings: Any) -> Explanation:
            refuse_unsuited(name, model, x)
            return method(model, x, target, **settings)

        explainers.register(name, description, inputs=inputs, requires=requires)(checked)
        return checked

    return decorate


def unsuited(method: str, model: nn.Module, x: Tensor) -> str | None:
    """Why `method` cannot explain `model` on inputs like `x`, e.g. 'needs image inputs, ...', or None."""
    meta, kind = explainers.get(method).meta, input_kind(x)
    if kind not in meta["inputs"]:
        return (f"needs {' or '.join(meta['inputs'])} inputs, but this model takes {PLURAL[kind]} of shape "
                f"{tuple(x.shape[1:])}")
    return None if meta["requires"] is None else meta["requires"](model)


def refuse_unsuited(method: str, model: nn.Module, x: Tensor) -> None:
    """A DlxError saying why `method` cannot explain `model`, and which methods can; nothing when it can."""
    reason = unsuited(method, model, x)
    if reason is not None:
        raise DlxError(f"method '{method}' {reason}; use {', '.join(suited(model, x))}")


def in_course_order() -> list[str]:
    """Every method, in the course's order (methods registered later come after)."""
    return sorted(explainers.names(), key=lambda n: COURSE_ORDER.index(n) if n in COURSE_ORDER else len(COURSE_ORDER))


def suited(model: nn.Module, x: Tensor) -> list[str]:
    """The methods that can explain `model` on inputs like `x`, in the course's order."""
    return [name for name in in_course_order() if unsuited(name, model, x) is None]


def differentiable(x: Tensor) -> Tensor:
    """A copy of the input that gradients can flow to, leaving the caller's tensor as it was."""
    return x.detach().clone().requires_grad_(True)


def per_pixel(attribution: Tensor) -> Tensor:
    """(1, C, H, W) -> (H, W) by the largest magnitude over channels; (1, F) -> (F,); (1, T, F) -> (T, F)."""
    a = attribution.detach()[0]
    return a.abs().amax(dim=0) if a.dim() == 3 else a


def map_kind(x: Tensor) -> Kind:
    """The kind of a map with a value per pixel (an image), per feature (a table) or per step and feature."""
    return {"image": "map", "table": "features", "sequence": "sequence"}[input_kind(x)]


@contextmanager
def gradients_through(model: nn.Module) -> Iterator[None]:
    """cuDNN's recurrent layers give gradients only in training mode; an explained model is in evaluation mode
    (no dropout), so its recurrent layers run on PyTorch's own kernels, which give them in either mode."""
    if any(isinstance(m, nn.RNNBase) for m in model.modules()):
        with torch.backends.cudnn.flags(enabled=False):
            yield
    else:
        yield


def default_sigma(size: tuple[int, int]) -> float:
    """Smoothing of the rescaled map: 1/16 of the image side, in pixels (0.5 for 8x8, 14 for 224x224)."""
    return max(size) / 16


def to_input_size(raw: Tensor, size: tuple[int, int], sigma: float) -> Tensor:
    """A map rescaled to the input (bilinear) and smoothed with a Gaussian of `sigma` pixels: (h, w) -> (H, W)."""
    from skimage.filters import gaussian

    up = F.interpolate(raw[None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0]
    if sigma <= 0:
        return up
    # scikit-image filters separably (two 1-d passes), which stays cheap for wide kernels on large images
    smoothed = gaussian(up.cpu().numpy(), sigma=sigma, mode="reflect", truncate=3.0, preserve_range=True)
    return torch.as_tensor(smoothed, dtype=up.dtype, device=up.device)
