"""A trained run brought back: its config, data splits and model with a checkpoint's weights."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlx import build, threads
from dlx.config import Config, apply_overrides, validate
from dlx.config import load as load_config
from dlx.data.base import Splits, Standardizer
from dlx.errors import DlxError
from dlx.run.folder import Run
from dlx.run import checkpoint as checkpoints

CHECKPOINTS = ("best", "last")


@dataclass
class Trained:
    run: Run
    config: Config
    device: torch.device
    data: Splits
    model: nn.Module
    checkpoint: dict[str, Any]


def load_trained(run_path: str | Path, which: str = "best", data_overrides: list[str] = (),
                 device: str | None = None) -> Trained:
    """Rebuild a run's model from its config.yaml and load a checkpoint. `data_overrides` ('data.x=...')
    point the run at other data, standardised with the statistics the run was trained with."""
    if which not in CHECKPOINTS:
        raise DlxError(f"--checkpoint '{which}': choose best or last")
    run = Run.open(run_path)
    config = load_config(run.config_path)
    for text in data_overrides:
        if not text.startswith("data."):
            raise DlxError(f"--set '{text}': only data.* settings can change when evaluating a trained run")
    if data_overrides:
        config = validate(apply_overrides(config.to_dict(), list(data_overrides)))
    state = checkpoints.load(run.checkpoint(which))
    threads.choose(config.train.threads, None)  # the count the run trained with (auto chose and recorded it)
    dev = build.resolve_device(device or config.train.device)
    stats = state.get("standardizer")
    standardizer = Standardizer(stats["mean"], stats["std"]) if stats else None
    data = build.splits(config, dev, standardizer)
    model = build.model(config, data.spec).to(dev)
    try:
        model.load_state_dict(checkpoints.plain_keys(state["model"]))  # also a compiled or distributed model's
    except (KeyError, RuntimeError) as e:
        raise DlxError(f"{run.checkpoint(which)}: its weights do not fit this run's model "
                       f"({str(e).splitlines()[0][:160]})") from None
    model.eval()
    return Trained(run, config, dev, data, model, state)
