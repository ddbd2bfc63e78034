"""Three reference runs whose every logged number is kept in tests/fixtures/reference_metrics.json: a refactor of the
loop, the run layer or the objectives must leave them the same to the last bit on CPU (one thread).

Recorded before the training objectives and the run layer were introduced:
    python -m tests.reference_runs --record
"""
from __future__ import annotations

import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console

from tests.conftest import EXPERIMENTS

FIXTURE = Path(__file__).parent / "fixtures" / "reference_metrics.json"
CPU = ["train.device=cpu", "train.threads=1"]
# a deterministic text with structure a char model can learn, so the LM run needs no corpus on disk
TEXT = "".join(f"{w} {i % 7} {w[::-1]}\n" for i in range(600) for w in ("abc", "hello", "dlx", "xyz")[i % 4:i % 4 + 1])


def _train(runs: Path, experiment: str, overrides: list[str]) -> dict[str, Any]:
    from dlx.config import load
    from dlx.train.loop import start

    run, summary = start(load(EXPERIMENTS / experiment, [*overrides, *CPU]), runs, quiet=True,
                         console=Console(file=io.StringIO()))
    history = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    return {"metrics": summary["metrics"], "history": history, "best_epoch": summary["best_epoch"]}


def _sweep(folder: Path) -> list[dict[str, Any]]:
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from dlx.sweep.engine import sweep

    exp = folder / "digits_cnn.yaml"
    exp.write_text((EXPERIMENTS / "digits_cnn.yaml").read_text())
    spec = {"name": "ref", "experiment": "digits_cnn.yaml", "method": "tpe", "metric": "val/accuracy", "trials": 3,
            "epochs": 2, "seed": 0, "set": ["model.name=mlp", "model.sizes=16", "model.dropout=0.0", *CPU],
            "space": {"optimizer.lr": {"low": 0.001, "high": 0.03, "log": True}}}
    import yaml

    (folder / "sweep.yaml").write_text(yaml.safe_dump(spec))
    sweep(folder / "sweep.yaml", runs_dir=folder / "runs", console=Console(file=io.StringIO()))
    storage = JournalStorage(JournalFileBackend(str(folder / "runs" / "ref" / "study.journal")))
    study = optuna.load_study(study_name="ref", storage=storage)
    return [{"params": t.params, "value": t.value, "intermediate": {str(k): v for k, v in t.intermediate_values.items()}}
            for t in sorted(study.trials, key=lambda t: t.number)]


def measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        text = root / "corpus.txt"
        text.write_text(TEXT)
        (root / "sweep").mkdir()
        return {
            "digits_cnn": _train(root / "runs", "digits_cnn.yaml", ["train.epochs=3", "model.width=8", "model.hidden=32"]),
            # data.split and model.dropout below: a section switched to another entry used to lose all its
            # settings, and now keeps those the new entry takes; these pin the configs as they were recorded
            "char_lm": _train(root / "runs", "shakespeare_char_gpt.yaml", [
                "data.name=text", "data.split=[0.6, 0.2, 0.2]", f"data.path={text}", "data.block_size=32", "data.steps_per_epoch=20",
                "data.eval_windows=32", "model.layers=1", "model.width=32", "model.heads=2", "train.epochs=2",
                "train.max_minutes=null", "samples.every=null", "schedule.warmup=5"]),
            "sweep": _sweep(root / "sweep"),
        }


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    FIXTURE.write_text(json.dumps(measure(), indent=1) + "\n")
    print(f"wrote {FIXTURE}")
