"""The protocol every training objective implements, in one small class.

An objective names its parameter groups (`groups`): each group is one network of the model, trained by its own
optimizer and schedule (`optimizers.<group>` and `schedules.<group>` in the config, else `optimizer` and `schedule`).
For every batch the loop asks the objective for each group's loss in the order of `groups`, backpropagates it and
steps that group's optimizer before the next group's loss is computed: a GAN's discriminator moves, then its
generator answers the moved discriminator. While one group's loss is computed the other groups' parameters are
frozen, so no gradient leaks into a network that is not being trained by that loss.

Everything else (accumulation, clipping, AMP, EMA, DDP, checkpoints, early stopping, logging) is the loop's and
works for every objective.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from dlx.data.base import DataSpec, Splits
from dlx.data.text import TextCorpus, text_splits
from dlx.errors import DlxError
from dlx.models.modes import evaluating

if TYPE_CHECKING:  # torchmetrics is imported where metrics are built: it costs more than torch
    from matplotlib.figure import Figure
    from torchmetrics import MetricCollection

Batches = Iterable[tuple[Tensor, Tensor]]
VALIDATION_SEED = 0


class Objective:
    groups: tuple[str, ...] = ("model",)  # the parameter groups, stepped in this order for every batch
    measures_metrics: bool = True  # whether eval.metrics (accuracy, mse, ...) apply to its model's outputs
    embeds: bool = False  # whether its model's outputs are embeddings, measured by the retrieval metrics
    uses_loss: bool = True  # whether the config's loss section is what it minimises
    terms_logged: tuple[str, ...] = ("loss",)  # the keys `measure` returns besides the metrics, 'loss' first
    terms_trained: tuple[str, ...] = ()  # the keys `loss_terms` returns besides 'loss', logged for training too

    def __init__(self, model: nn.Module, spec: DataSpec, loss_fn: nn.Module):
        self.model, self.spec, self.loss_fn = model, spec, loss_fn

    def network(self, group: str) -> nn.Module:
        """The part of the model that `group`'s optimizer trains."""
        return self.model

    @classmethod
    def text_splits(cls, corpus: TextCorpus, fractions: tuple[float, float, float], device: torch.device,
                    **settings) -> Splits:
        """What a text becomes for this objective, given its settings: windows of the token stream for a language
        model (skip-gram and CBOW make word pairs instead)."""
        return text_splits(corpus, fractions, device)

    def check(self, data: Splits, model_name: str) -> None:
        """A DlxError when the model cannot serve this objective on this data (before any folder is made)."""

    def prepare(self, data: Splits) -> None:
        """Read what the objective needs from the training data before the first step (the word counts negative
        sampling draws from); called once the data has passed `check`."""

    def advance(self, step: int, total: int) -> None:
        """Called before each optimizer step's losses with the steps done so far and the run's total: settings that
        change over training (a KL warm-up, a decaying teacher-forcing ratio) follow the step, so a resumed run
        takes the same values as an unbroken one."""

    def train_batches(self, data: Splits, batch_size: int) -> Batches:
        """The training batches of an epoch: the train split shuffled (metric learning balances classes instead)."""
        return data.batches("train", batch_size, shuffle=True)

    def graph_input(self, x: Tensor) -> Tensor:
        """What the model's forward takes, for examples `x` (TensorBoard traces its graph on it)."""
        return x

    def loss(self, group: str, nets: Mapping[str, nn.Module], x: Tensor, y: Tensor) -> Tensor:
        """The loss whose gradient trains `group`. `nets[g]` is group g's network as training calls it (wrapped by
        DDP or torch.compile for the group being trained, frozen for the others)."""
        raise NotImplementedError

    def loss_terms(self, group: str, nets: Mapping[str, nn.Module], x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """What training calls: 'loss', `loss`'s value, and the `terms_trained` it is made of, detached (a VAE's
        reconstruction and KL), which the loop logs beside it as train/<term> and train/epoch_<term>."""
        return {"loss": self.loss(group, nets, x, y)}

    def terms(self, model: nn.Module, x: Tensor, y: Tensor) -> dict[str, Tensor]:
        """Validation: the named losses of a batch, each a mean over its examples; 'loss' is the one monitored."""
        raise NotImplementedError

    def pictures(self, model: nn.Module, data: Splits, split: str, title: str) -> dict[str, Figure]:
        """name -> figure: what a trained model of this objective is shown by, written into the run folder when
        training ends (on the val split) and by `dlx evaluate` (on its split); none by default."""
        return {}

    def measure(self, model: nn.Module, batches: Batches, metrics: MetricCollection) -> dict[str, float]:
        """Each term's mean per example over a split, without gradients. Noise the terms draw (a GAN's z, a VAE's
        code) is the same at every evaluation, and training's random state goes on untouched."""
        totals: dict[str, Tensor] = {}
        count = 0
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with evaluating(model), torch.random.fork_rng(devices):
            torch.manual_seed(VALIDATION_SEED)
            for x, y in batches:
                for name, value in self.terms(model, x, y).items():
                    totals[name] = totals[name] + value * len(x) if name in totals else value * len(x)
                count += len(x)
        return {name: total.item() / count for name, total in totals.items()}


def submodule(model: nn.Module, name: str, objective: str) -> nn.Module:
    part = getattr(model, name, None)
    if not isinstance(part, nn.Module):
        raise DlxError(f"objective '{objective}' trains a model with a '{name}' network; this model has none "
                       f"(choose a model made for it, e.g. `dlx list models '*{objective}*'`)")
    return part
