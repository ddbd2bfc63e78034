"""`dlx evaluate`: the metrics of a trained run on a split, as a table, JSON and a confusion-matrix PNG."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torchmetrics import MetricCollection
from torchmetrics.classification import (MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score,
                                         MulticlassPrecision, MulticlassRecall)
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score

from dlx.data.base import CLASSIFICATION, DataSpec
from dlx.errors import DlxError
from dlx.restore import load_trained

SPLITS = ("train", "val", "test")


def classification_metrics(spec: DataSpec) -> MetricCollection:
    k = spec.num_classes
    return MetricCollection({
        "accuracy": MulticlassAccuracy(k, average="micro"),
        "top5": MulticlassAccuracy(k, top_k=min(5, k), average="micro"),
        "precision": MulticlassPrecision(k, average="macro"),
        "recall": MulticlassRecall(k, average="macro"),
        "f1": MulticlassF1Score(k, average="macro"),
        "per_class_precision": MulticlassPrecision(k, average="none"),
        "per_class_recall": MulticlassRecall(k, average="none"),
        "per_class_f1": MulticlassF1Score(k, average="none"),
        "confusion_matrix": MulticlassConfusionMatrix(k),
    })


def regression_metrics(spec: DataSpec) -> MetricCollection:
    n = spec.out_features
    return MetricCollection({"mse": MeanSquaredError(num_outputs=n), "rmse": MeanSquaredError(squared=False, num_outputs=n),
                             "mae": MeanAbsoluteError(num_outputs=n), "r2": R2Score()})


def evaluate(run_path: str | Path, split: str = "test", which: str = "best", data_overrides: list[str] = ()) -> dict[str, Any]:
    """Rebuild the run, compute every metric of its task on `split`, and record the result in the run folder."""
    if split not in SPLITS:
        raise DlxError(f"--split '{split}': choose train, val or test")
    trained = load_trained(run_path, which, data_overrides)
    spec = trained.data.spec
    classify = spec.task == CLASSIFICATION
    metrics = (classification_metrics(spec) if classify else regression_metrics(spec)).to(trained.device)
    x, y = trained.data[split]
    with torch.no_grad():
        for start in range(0, len(x), trained.config.train.eval_batch_size):
            end = start + trained.config.train.eval_batch_size
            metrics.update(trained.model(x[start:end]), y[start:end])
    values = {name: value.cpu() for name, value in metrics.compute().items()}
    report: dict[str, Any] = {
        "run": str(trained.run.path), "split": split, "checkpoint": which, "examples": len(x),
        "epoch": trained.checkpoint["loop"]["epoch"], "task": spec.task,
        "metrics": {k: v.mean().item() for k, v in values.items() if v.numel() == 1 or k in ("mse", "rmse", "mae")},
    }
    if classify:
        report["per_class"] = {
            name: {m: values[f"per_class_{m}"][i].item() for m in ("precision", "recall", "f1")}
            | {"support": int((y == i).sum())}
            for i, name in enumerate(spec.class_names)
        }
        report["confusion_matrix"] = values["confusion_matrix"].tolist()
    _record(trained, report)
    return report


def _record(trained, report: dict[str, Any]) -> None:
    """evaluation.json keeps one entry per split and checkpoint; the confusion matrix also goes to a PNG and TensorBoard."""
    run, key = trained.run, f"{report['split']}/{report['checkpoint']}"
    path = run.path / "evaluation.json"
    existing = json.loads(path.read_text()) if path.is_file() else {}
    run.write_json("evaluation.json", {**existing, key: report})
    step = trained.checkpoint["loop"]["step"]
    for name, value in report["metrics"].items():
        run.writer.add_scalar(f"eval/{report['split']}/{name}", value, step)
    if "confusion_matrix" in report:
        from dlx.plots import confusion_matrix_figure

        figure = confusion_matrix_figure(report["confusion_matrix"], trained.data.spec.class_names,
                                         f"{run.name}: {report['split']} split, {report['checkpoint']} checkpoint")
        figure.savefig(run.path / f"confusion_matrix-{report['split']}.png", dpi=120)
        run.writer.add_figure(f"eval/{report['split']}/confusion_matrix", figure, step)
    run.close()


def print_report(console: Console, report: dict[str, Any]) -> None:
    console.print(f"[bold]{report['run']}[/]: {report['split']} split ({report['examples']} examples), "
                  f"{report['checkpoint']} checkpoint from epoch {report['epoch']}", highlight=False)
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in report["metrics"].items():
        table.add_row(name, f"{value:.4f}")
    console.print(table)
    if "per_class" in report:
        per_class = Table(title="per class")
        for column in ("class", "precision", "recall", "f1", "support"):
            per_class.add_column(column, justify="left" if column == "class" else "right")
        for name, row in report["per_class"].items():
            per_class.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
        console.print(per_class)
