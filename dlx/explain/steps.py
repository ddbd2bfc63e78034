"""Models with a prediction per step (a running sum: outputs (B, C, T)) explained at one step, as classifiers."""
from __future__ import annotations

from torch import Tensor, nn

from dlx.errors import DlxError


class AtStep(nn.Module):
    """`model` answering only at step `step`: (B, C, T) -> (B, C). Anything else (attention_maps, ...) is the
    model's own."""

    def __init__(self, model: nn.Module, step: int):
        super().__init__()
        self.model, self.step = model, step

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)[:, :, self.step]

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)  # its own parameters, buffers and submodules (self.model)
        except AttributeError:
            return getattr(self.model, name)


def answering(model: nn.Module, outputs: Tensor, step: int | None) -> tuple[nn.Module, int | None]:
    """The model as a classifier, given its `outputs` for a sample, and the step explained: the last one of a
    per-step model unless `step` says which, None for a model that answers once per sample (where a --step is a
    mistake)."""
    if outputs.dim() == 2:
        if step is not None:
            raise DlxError(f"--step {step}: this model answers once per sample, not at every step; leave --step out")
        return model, None
    steps = outputs.shape[-1]
    step = steps - 1 if step is None else step
    if not 0 <= step < steps:
        raise DlxError(f"--step {step}: this model answers at steps 0..{steps - 1}")
    return AtStep(model, step), step
