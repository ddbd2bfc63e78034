"""The one place where a validated config meets constructors.

Settings were checked and completed by dlx.config (the registries import their entries' modules on first use);
here runtime objects (the data spec, the model, the optimizer) are passed positionally.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

import dlx.losses
import dlx.metrics
import dlx.optim
import dlx.schedules
from dlx import registry
from dlx.config import Config
from dlx.data.augment import Augmenter
from dlx.data.augment import augmenter as augmenter_for
from dlx.data.base import REGRESSION, RECONSTRUCTION, ArrayData, DataSpec, Splits, Standardizer, make_splits
from dlx.data.checks import check_arrays, check_class_count, check_splits
from dlx.data.resize import resized
from dlx.data.stream import StreamData, stream_splits
from dlx.data.text import TextCorpus
from dlx.errors import DlxError
from dlx.models.embedding import Embedder, head_spec
from dlx.objectives.base import Objective
from dlx.schedules import RunLength

if TYPE_CHECKING:
    from torchmetrics import MetricCollection


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then MPS, then CPU; an explicit device must exist on this machine."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DlxError(f"train.device: '{name}' is not a device (auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DlxError(f"train.device: '{name}' requested, but CUDA is not available here (use --device cpu)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DlxError(f"train.device: '{name}' requested, but MPS is not available here (use --device cpu)")
    return device


def dataset(config: Config) -> ArrayData | TextCorpus | StreamData:
    """The dataset, checked: whatever a file holds, what comes back can be split and trained on."""
    data = registry.datasets.get(config.data.name).build(**config.data.settings)
    if isinstance(data, StreamData) and config.data.reconstruct:
        raise DlxError(f"data.reconstruct: {data.source} streams from disk, and autoencoders train on data in memory; "
                       f"lower data.size, or set data.stream: false")
    if config.data.resize and isinstance(data, (TextCorpus, StreamData)):
        what = "text" if isinstance(data, TextCorpus) else "streamed from disk (image folders take data.size)"
        raise DlxError(f"data.resize: dataset '{config.data.name}' is {what}; resize scales images held in memory")
    if isinstance(data, StreamData):  # the examples are checked as they are read
        check_class_count(data.class_names, data.source or f"data '{config.data.name}'")
    if isinstance(data, (TextCorpus, StreamData)):  # text is checked as it is split
        return data
    data = resized(data, config.data.resize, config.data.name) if config.data.resize else data
    data = data.as_reconstruction() if config.data.reconstruct else data
    check_arrays(data, data.source or f"data '{config.data.name}'")
    return data


def splits(config: Config, device: torch.device, standardizer: Standardizer | None = None) -> Splits:
    data = dataset(config)
    if isinstance(data, TextCorpus):  # one long stream cut into windows, not a table of examples
        for key in ("fold", "bag"):
            if getattr(config.data, key) is not None:
                raise DlxError(f"data.{key}: dataset '{config.data.name}' is one text stream; --folds and --bagging "
                               f"need examples")
        objective = registry.objectives.get(config.objective.name).obj
        return objective.text_splits(data, config.data.split, device, **config.objective.settings)
    seed = config.seed if config.data.split_seed is None else config.data.split_seed
    make = stream_splits if isinstance(data, StreamData) else make_splits
    parts = make(data, config.data.split, seed, config.data.standardize, device, standardizer, config.data.fold,
                 config.data.bag)
    check_splits(parts, config.data.split, len(data.y))
    return parts


def model(config: Config, spec: DataSpec) -> nn.Module:
    """The model; with model.embedding_head, the backbone's output layer is an embedding head of that width."""
    entry = registry.models.get(config.model.name)
    if config.model.embedding_head is None:
        return entry.build(spec, **config.model.settings)
    return Embedder(entry.build(head_spec(spec, config.model.embedding_head), **config.model.settings))


def _check_task(kind: str, entry: registry.Entry, spec: DataSpec) -> None:
    task = entry.meta.get("task")
    accepted = {spec.task, REGRESSION} if spec.task == RECONSTRUCTION else {spec.task}  # a reconstruction is a regression on the input
    tasks = task if isinstance(task, tuple) else (task,)  # an entry may serve several tasks
    if task is not None and accepted.isdisjoint(tasks):
        raise DlxError(f"{kind} '{entry.name}' is for {' or '.join(tasks)} data, but this dataset is {spec.task}; "
                       f"choose another {kind} (dlx list {kind}s)")


def loss(config: Config, spec: DataSpec, net: nn.Module | None = None) -> nn.Module:
    """The loss; given the model, with the loss section's l1/l2 penalties on its weights (training only)."""
    entry = registry.losses.get(config.loss.name)
    if registry.objectives.get(config.objective.name).obj.uses_loss:  # else the section is the unused default
        _check_task("loss", entry, spec)
    fn = entry.build(**config.loss.settings)
    if net is None or not (config.loss.l1 or config.loss.l2):
        return fn
    return dlx.losses.Penalized(fn, dlx.optim.split_weights(net)[0], config.loss.l1, config.loss.l2)


def objective(config: Config, spec: DataSpec, net: nn.Module, loss_fn: nn.Module) -> Objective:
    return registry.objectives.get(config.objective.name).build(net, spec, loss_fn, **config.objective.settings)


def optimizer(config: Config, net: nn.Module, group: str = "model") -> torch.optim.Optimizer:
    """The optimizer of one parameter group (the objective's `group`), over `net`'s parameters."""
    section = config.optimizer_for(group)
    return registry.optimizers.get(section.name).build(net, **section.settings)


def schedule(config: Config, opt: torch.optim.Optimizer, length: RunLength, group: str = "model") -> dlx.schedules.Schedule:
    section = config.schedule_for(group)
    steps = dlx.schedules.RunSteps(length.total, length.per_epoch, section.warmup)
    return registry.schedules.get(section.name).build(opt, steps, **section.settings)


def augmenter(config: Config, data: Splits, device: torch.device) -> Augmenter | None:
    """What data.augment asks for, applied to training batches; None when it is all off."""
    return augmenter_for(config.data.augment, data.spec, config.seed, device, data.standardizer)


def metric_names(config: Config, spec: DataSpec) -> list[str]:
    """eval.metrics, else the task's defaults, each checked against the data's task; none for an objective whose
    model's outputs they cannot measure."""
    objective = registry.objectives.get(config.objective.name).obj
    if config.eval.metrics and not objective.measures_metrics:
        raise DlxError(f"eval.metrics: objective '{config.objective.name}' logs its own losses; these metrics do not "
                       f"apply to its model's outputs (remove eval.metrics)")
    defaults = dlx.metrics.EMBEDDING_DEFAULTS if objective.embeds else dlx.metrics.DEFAULTS[spec.task]
    names = (config.eval.metrics or defaults) if objective.measures_metrics else []
    for name in names:
        entry = registry.metrics.get(name)
        if entry.meta.get("embeddings", False) != objective.embeds:
            gives = "embeddings" if objective.embeds else "predictions"
            fitting = [e.name for e in registry.metrics.list() if e.meta.get("embeddings", False) == objective.embeds]
            raise DlxError(f"eval.metrics: {name} does not measure {gives}, which objective '{config.objective.name}' "
                           f"trains its model to give; choose from {', '.join(fitting)}")
        _check_task("metric", entry, spec)
        least = entry.meta.get("min_classes", 0)
        if spec.num_classes < least:
            raise DlxError(f"eval.metrics: {name} needs more than {least - 1} classes and this data has "
                           f"{spec.num_classes}; leave it out")
    return names


def metrics(config: Config, spec: DataSpec, device: torch.device) -> MetricCollection:
    from torchmetrics import MetricCollection  # costs more than torch: only where metrics are measured

    return MetricCollection({name: registry.metrics.get(name).build(spec)
                             for name in metric_names(config, spec)}).to(device)
