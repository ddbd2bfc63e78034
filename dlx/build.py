"""The one place where a validated config meets constructors.

Importing this module registers every built-in entry. Settings were checked and completed by
dlx.config; here runtime objects (the data spec, the model, the optimizer) are passed positionally.
"""
from __future__ import annotations

import torch
from torch import nn
from torchmetrics import Metric, MetricCollection

import dlx.data
import dlx.losses
import dlx.metrics
import dlx.models
import dlx.optim
import dlx.schedules  # noqa: F401  (registers entries)
from dlx import registry
from dlx.config import Config
from dlx.data.base import ArrayData, DataSpec, Splits, Standardizer, make_splits
from dlx.errors import DlxError


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


def dataset(config: Config) -> ArrayData:
    return registry.datasets.get(config.data.name).build(**config.data.settings)


def splits(config: Config, device: torch.device, standardizer: Standardizer | None = None) -> Splits:
    return make_splits(dataset(config), config.data.split, config.seed, config.data.standardize, device, standardizer)


def model(config: Config, spec: DataSpec) -> nn.Module:
    return registry.models.get(config.model.name).build(spec, **config.model.settings)


def _check_task(kind: str, entry: registry.Entry, spec: DataSpec) -> None:
    task = entry.meta.get("task")
    if task is not None and task != spec.task:
        raise DlxError(f"{kind} '{entry.name}' is for {task} data, but this dataset is {spec.task}; "
                       f"choose another {kind} (dlx list {kind}s)")


def loss(config: Config, spec: DataSpec) -> nn.Module:
    entry = registry.losses.get(config.loss.name)
    _check_task("loss", entry, spec)
    return entry.build(**config.loss.settings)


def optimizer(config: Config, net: nn.Module) -> torch.optim.Optimizer:
    return registry.optimizers.get(config.optimizer.name).build(net, **config.optimizer.settings)


def schedule(config: Config, opt: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    return registry.schedules.get(config.schedule.name).build(opt, total_steps, **config.schedule.settings)


def metric_names(config: Config, spec: DataSpec) -> list[str]:
    return config.eval.metrics or dlx.metrics.DEFAULTS[spec.task]


def metrics(config: Config, spec: DataSpec, device: torch.device) -> MetricCollection:
    built: dict[str, Metric] = {}
    for name in metric_names(config, spec):
        entry = registry.metrics.get(name)
        _check_task("metric", entry, spec)
        built[name] = entry.build(spec)
    return MetricCollection(built).to(device)
