"""Run folders written by hand, as `dlx train`, `--folds` and `dlx sweep` leave them, without training: for the
tests of what reads run folders (`dlx runs`, its damaged files, its start-up time)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from dlx.config import dump, load
from tests.conftest import EXPERIMENTS


def run(folder: Path, accuracy: float, *overrides: str, epochs: int = 3) -> Path:
    """A finished digits MLP run whose best val/accuracy is `accuracy` (and its test accuracy a little less)."""
    config = load(EXPERIMENTS / "digits_mlp.yaml", [*overrides, f"name={folder.name}"])
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "config.yaml").write_text(dump(config))
    (folder / "metrics.jsonl").write_text("".join(json.dumps({"step": 10 * e, "epoch": e, "val/accuracy": accuracy})
                                                  + "\n" for e in range(1, epochs + 1)))
    metrics = {split: {"loss": 1 - accuracy, "accuracy": accuracy - shift} for split, shift in (("val", 0), ("test", 0.01))}
    (folder / "summary.json").write_text(json.dumps({"epochs": epochs, "seconds": 2.5, "best_epoch": epochs,
                                                     "monitor": {"val/accuracy": accuracy}, "metrics": metrics}))
    return folder


def cross_validation(folder: Path, accuracies: list[float]) -> Path:
    """A parent folder of len(accuracies) finished folds with its cv_summary.json."""
    folds = [run(folder / f"fold-{i}", a) for i, a in enumerate(accuracies, 1)]
    shutil.copy(folds[0] / "config.yaml", folder / "config.yaml")
    mean = sum(accuracies) / len(accuracies)
    stat = {"mean": mean, "std": 0.01, "values": accuracies}
    (folder / "cv_summary.json").write_text(json.dumps({
        "folds": len(folds), "runs": [f.name for f in folds], "epochs": [3] * len(folds), "seconds": 7.5,
        "metrics": {"val": {"accuracy": stat}, "test": {"accuracy": stat}}}))
    return folder


def sweep(folder: Path, accuracies: list[float]) -> Path:
    """A study folder: its journal and one finished trial run per accuracy."""
    for i, accuracy in enumerate(accuracies):
        run(folder / f"trial-{i:04d}", accuracy, "train.monitor=val/accuracy", "train.mode=max")
    (folder / "study.journal").write_text("")
    return folder
