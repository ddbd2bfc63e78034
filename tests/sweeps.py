"""Helpers for the sweep tests: a tiny sweep file beside a copy of the digits experiment, and the study it left."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import optuna
import yaml

from tests.conftest import EXPERIMENTS

TINY = {
    "name": "tiny",
    "experiment": "digits_cnn.yaml",
    "set": ["model.name=mlp", "model.sizes=16", "train.device=cpu", "train.patience=null"],
    "method": "random",
    "metric": "val/accuracy",
    "trials": 6,
    "epochs": 2,
    "space": {"optimizer.lr": {"low": 0.001, "high": 0.03, "log": True}, "model.sizes": ["8", "16", "32"]},
}


def write_sweep(folder: Path, **changes: Any) -> Path:
    shutil.copy(EXPERIMENTS / "digits_cnn.yaml", folder / "digits_cnn.yaml")
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump({**TINY, **changes}, sort_keys=False))
    return path


def journal_study(folder: Path, name: str = "tiny") -> optuna.Study:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(folder / "study.journal")))
    return optuna.load_study(study_name=name, storage=storage)


def param_sets(trials: list[optuna.trial.FrozenTrial]) -> list[tuple]:
    return [tuple(sorted(t.params.items())) for t in trials]
