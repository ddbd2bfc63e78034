"""Sequence to sequence with teacher forcing: the token cross-entropy of the target given the source.

A batch is x (B, S), the padded sources, and y (B, T + 2), each target between <s> and </s>, padded. The decoder
reads y[:, :-1] and is trained to predict y[:, 1:]; padding counts in neither the loss nor the metrics. Teacher
forcing, as the course describes it, feeds the decoder the true previous token during training. The ratio below 1
feeds the model's own prediction in its place that often (scheduled sampling), so that it learns to recover from its
mistakes as it must when it translates; `teacher_forcing_end` makes the ratio move linearly from `teacher_forcing`
to that value over the run's steps (`advance`: a resumed run takes the same ratio at the same step).

Validation reports the loss with the true previous tokens, and the metrics (exact-sequence and token accuracy, BLEU)
on greedy translations, which see only the source: what the model does when it is used.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from dlx.data.base import Splits
from dlx.data.sequence_pairs import BOS_ID, PAD_ID
from dlx.errors import DlxError
from dlx.models.modes import evaluating
from dlx.models.seq2seq_decode import greedy
from dlx.objectives.base import Batches, Objective
from dlx.registry import objectives

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

Ratio = Annotated[float, Field(ge=0.0, le=1.0)]


def token_loss(logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
    """(B, T, V) logits and (B, T) targets -> cross-entropy over the tokens that are not padding."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD_ID, reduction=reduction)


@objectives.register("seq2seq", "encoder-decoder: token cross-entropy of the target given the source, padding "
                     "ignored; teacher forcing with a ratio that can decay (teacher_forcing -> teacher_forcing_end)")
class Seq2Seq(Objective):
    uses_loss = False

    def __init__(self, model: nn.Module, spec, loss_fn: nn.Module, *, teacher_forcing: Ratio = 1.0,
                 teacher_forcing_end: Ratio | None = None):
        super().__init__(model, spec, loss_fn)
        self.start, self.end = teacher_forcing, teacher_forcing_end
        self.teacher_forcing = teacher_forcing

    def advance(self, step: int, total: int) -> None:
        if self.end is not None:
            self.teacher_forcing = self.start + (self.end - self.start) * min(step / max(total, 1), 1.0)

    def check(self, data: Splits, model_name: str) -> None:
        if not all(callable(getattr(self.model, name, None)) for name in ("encode", "step")):
            raise DlxError(f"objective 'seq2seq' trains an encoder-decoder; '{model_name}' is none (try model.name="
                           f"seq2seq_rnn or seq2seq_transformer)")
        longest, limit = max(len(data[s][1][0]) for s in ("train", "val", "test")) - 1, self.model.max_length
        if limit is not None and longest > limit:
            raise DlxError(f"the targets are up to {longest} tokens long with <s>, more than model.max_length={limit}; "
                           f"raise it")

    def graph_input(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x, torch.full((len(x), 1), BOS_ID, dtype=torch.long, device=x.device)  # the sources and one <s>

    def loss(self, group: str, nets: Mapping[str, nn.Module], x: Tensor, y: Tensor) -> Tensor:
        return token_loss(nets["model"](x, y[:, :-1], self.teacher_forcing), y[:, 1:])

    def measure(self, model: nn.Module, batches: Batches, metrics: MetricCollection) -> dict[str, float]:
        """The loss per target token with the true previous tokens; the metrics of greedy translations."""
        metrics.reset()
        total, tokens = None, 0
        with evaluating(model):
            for x, y in batches:
                targets = y[:, 1:]
                summed = token_loss(model(x, y[:, :-1]), targets, reduction="sum")
                total = summed if total is None else total + summed
                tokens += (targets != PAD_ID).sum()
                metrics.update(greedy(model, x, targets.shape[1]), targets)
        values = {"loss": total.item() / int(tokens)}
        values.update({name: value.float().mean().item() for name, value in metrics.compute().items()})
        return values
