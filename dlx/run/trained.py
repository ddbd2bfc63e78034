"""A trained run opened again: its config, a checkpoint, the model with the checkpoint's weights and, when asked for,
its data. The one way every command that reads a trained run (evaluate, explain, generate, committees) gets it."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from dlx import build, threads
from dlx.config import Config, apply_overrides, validate
from dlx.config import load as load_config
from dlx.data.base import LANGUAGE, DataSpec, Splits, Standardizer
from dlx.errors import DlxError
from dlx.run import checkpoint as checkpoints
from dlx.run.checkpoint import Checkpoint
from dlx.run.folder import Run

CHECKPOINTS = ("best", "last")


@dataclass(eq=False)
class Trained:
    run: Run
    config: Config
    device: torch.device
    checkpoint: Checkpoint
    model: nn.Module  # in eval mode, on `device`

    @property
    def spec(self) -> DataSpec:
        return self.checkpoint.data_spec

    @property
    def standardizer(self) -> Standardizer | None:
        """The train split's statistics the run's inputs are standardised with; None when it was trained on raw inputs."""
        stats = self.checkpoint.standardizer
        return Standardizer(stats["mean"], stats["std"]) if stats else None

    @cached_property
    def data(self) -> Splits:
        """The run's data splits (or the data its config now points to), standardised with the statistics the run was
        trained with; built on first use, so commands that need none (generate) never read the data."""
        data = build.splits(self.config, self.device, self.standardizer)
        if data.spec.in_shape != self.spec.in_shape:
            raise DlxError(f"this data has samples of shape {data.spec.in_shape}, but {self.run.path} was trained on "
                           f"{self.spec.in_shape}")
        ours, theirs = self.spec, data.spec
        if ours.task == LANGUAGE and (ours.tokenizer, ours.class_names) != (theirs.tokenizer, theirs.class_names):
            # token ids would mean other tokens than those the model learned
            raise DlxError(f"this text's vocabulary ({len(theirs.class_names)} {theirs.tokenizer}) is not the one "
                           f"{self.run.path} was trained with ({len(ours.class_names)} {ours.tokenizer}); a text "
                           f"model is evaluated on text with the same vocabulary")
        return data

    def require_objective(self, objective: str, command: str) -> None:
        if self.config.objective.name != objective:
            raise DlxError(f"{command} needs a run trained with objective '{objective}'; {self.run.path} was trained "
                           f"with '{self.config.objective.name}' (its validation losses are in summary.json)")


def open_trained(run_path: str | Path, which: str = "best", data_overrides: list[str] = (),
                 device: str | None = None) -> Trained:
    """Rebuild a run's model from its config.yaml and the data spec in a checkpoint, and load that checkpoint's
    weights. `data_overrides` ('data.x=...') point the run at other data."""
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
    model = build.model(config, state.data_spec).to(dev)
    try:
        model.load_state_dict(checkpoints.plain_keys(state.model))  # also a compiled or distributed model's
    except (KeyError, RuntimeError) as e:
        raise DlxError(f"{run.checkpoint(which)}: its weights do not fit this run's model "
                       f"({str(e).splitlines()[0][:160]})") from None
    model.eval()
    return Trained(run, config, dev, state, model)
