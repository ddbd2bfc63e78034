"""`dlx evaluate`: the metrics of a trained run, or of a committee of runs, on a split, as a table, JSON and
figures: the confusion matrix, the reject option's curve, the ROC curve of a two-class classifier, a gallery
of the worst examples, and the residuals of a regression."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import (MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score,
                                         MulticlassPrecision, MulticlassRecall)
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, R2Score

from dlx import analysis, committee, crossval, gallery, registry
from dlx.data.base import CLASSIFICATION, LANGUAGE, RECONSTRUCTION, REGRESSION, DataSpec
from dlx.errors import DlxError
from dlx.metrics import DEFAULTS, top5_applies
from dlx.run.trained import Trained, load_trained

SPLITS = ("train", "val", "test")


@dataclass
class Request:
    """What to evaluate beyond the metrics; the defaults give the plain report of one run."""

    split: str = "test"
    checkpoint: str = "best"
    data_overrides: list[str] = field(default_factory=list)
    ensemble: committee.Mode | None = None  # several runs answer together: vote or mean
    margins: list[float] = field(default_factory=list)  # the reject option at each margin
    threshold: float | None = None  # a two-class classifier's decision threshold on p(class 1); None: 0.5
    top_losses: int = 0  # a gallery of this many worst examples
    out: Path | None = None  # the figures' folder; None: the run folder (a committee: ./committee-<mode>)


def classification_metrics(spec: DataSpec) -> MetricCollection:
    k = spec.num_classes
    top5 = {"top5": MulticlassAccuracy(k, top_k=5, average="micro")} if top5_applies(k) else {}
    return MetricCollection({
        "accuracy": MulticlassAccuracy(k, average="micro"),
        **top5,
        "precision": MulticlassPrecision(k, average="macro"),
        "recall": MulticlassRecall(k, average="macro"),
        "f1": MulticlassF1Score(k, average="macro"),
        "per_class_precision": MulticlassPrecision(k, average="none"),
        "per_class_recall": MulticlassRecall(k, average="none"),
        "per_class_f1": MulticlassF1Score(k, average="none"),
        "confusion_matrix": MulticlassConfusionMatrix(k),
    })


def reconstruction_metrics(spec: DataSpec) -> MetricCollection:
    """An autoencoder's errors over every reconstructed value, whatever the input's shape."""
    return MetricCollection({"mse": MeanSquaredError(), "rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError()})


def regression_metrics(spec: DataSpec) -> MetricCollection:
    n = spec.out_features
    return MetricCollection({"mse": MeanSquaredError(num_outputs=n), "rmse": MeanSquaredError(squared=False, num_outputs=n),
                             "mae": MeanAbsoluteError(num_outputs=n), "r2": R2Score()})


@torch.no_grad()
def predict(trained: Trained, split: str) -> Tensor:
    """The model's answers on a split, in batches: class probabilities (N, C) or regression outputs (N, k)."""
    x = trained.data[split][0]
    size = trained.config.train.eval_batch_size
    outputs = torch.cat([trained.model(x[i : i + size]) for i in range(0, len(x), size)])
    return outputs.softmax(dim=1) if trained.data.spec.task == CLASSIFICATION else outputs


def language_metrics(spec: DataSpec) -> MetricCollection:
    """Perplexity and bits per character, as training logs them."""
    return MetricCollection({name: registry.metrics.get(name).build(spec) for name in DEFAULTS[LANGUAGE]})


def decision_threshold(request: Request, spec: DataSpec) -> float | None:
    """The decision threshold of a two-class classifier (every metric of the report answers by it); None for others."""
    if spec.task != CLASSIFICATION or spec.num_classes != 2:
        return None
    return analysis.DEFAULT_THRESHOLD if request.threshold is None else request.threshold


def measure(spec: DataSpec, outputs: Tensor, y: Tensor, threshold: float | None = None) -> dict[str, Tensor]:
    """Every metric of the task; a two-class classifier's answers are its decisions at `threshold`."""
    kind = {CLASSIFICATION: classification_metrics, LANGUAGE: language_metrics,
            RECONSTRUCTION: reconstruction_metrics}.get(spec.task, regression_metrics)
    metrics = kind(spec).to(outputs.device)
    metrics.update(outputs if threshold is None else analysis.decide(outputs, threshold), y)
    return {name: value.cpu() for name, value in metrics.compute().items()}


def scalars(values: dict[str, Tensor]) -> dict[str, float]:
    """The single numbers of a report; the error rate, as the course reports it, beside the accuracy."""
    found = {}
    for k, v in values.items():
        if v.numel() == 1 or k in ("mse", "rmse", "mae"):
            found[k] = v.mean().item()
            if k == "accuracy":
                found["error_rate"] = 1.0 - found[k]
    return found


def evaluate(runs: list[Path] | str | Path, request: Request | None = None) -> dict[str, Any]:
    """Rebuild the run (or every member of the committee), compute every metric of its task on the split,
    and record the result and its figures."""
    request = request or Request()
    runs = [Path(runs)] if isinstance(runs, (str, Path)) else list(runs)
    members = _load(runs, request)
    spec = members[0].data.spec
    _check(request, spec)
    y = members[0].data[request.split][1]
    answers = [predict(m, request.split) for m in members]
    outputs = committee.combine(answers, request.ensemble, spec.task) if request.ensemble else answers[0]
    threshold = decision_threshold(request, spec)
    values = measure(spec, outputs, y, threshold)
    report: dict[str, Any] = {
        "run": str(members[0].run.path) if len(members) == 1 else f"committee ({request.ensemble}) of {len(members)} runs",
        "ensemble": request.ensemble, "split": request.split, "checkpoint": request.checkpoint, "examples": len(y), "task": spec.task,
        "epoch": members[0].checkpoint["loop"]["epoch"] if len(members) == 1 else None,
        "threshold": threshold, "metrics": scalars(values),
    }
    if request.ensemble:
        report["members"] = [{"run": str(m.run.path), "epoch": m.checkpoint["loop"]["epoch"],
                              "metrics": scalars(measure(spec, a, y, threshold))} for m, a in zip(members, answers)]
    if spec.task == CLASSIFICATION:
        report["per_class"] = {
            name: {m: values[f"per_class_{m}"][i].item() for m in ("precision", "recall", "f1")}
            | {"support": int((y == i).sum())}
            for i, name in enumerate(spec.class_names)
        }
        report["confusion_matrix"] = values["confusion_matrix"].tolist()
        if spec.num_classes == 2:
            report["binary"] = analysis.binary_decision(outputs, y, threshold)
            report["metrics"]["auc"] = report["binary"]["auc"]
        if request.margins:
            report["reject"] = analysis.reject_curve(outputs, y, request.margins)
    if request.top_losses:
        worst = analysis.top_losses(outputs, y, spec.task, request.top_losses)
        losses = analysis.example_losses(outputs, y, spec.task)
        report["top_losses"] = [_example(spec, int(i), outputs[i], y[i], float(losses[i]), threshold) for i in worst]
    folder = request.out or (members[0].run.path if len(members) == 1 else Path(f"committee-{request.ensemble}"))
    folder.mkdir(parents=True, exist_ok=True)
    report["figures"] = [str(p) for p in _figures(report, members, outputs, y, folder)]
    _record(members, report, folder)
    return report


def _figures(report: dict[str, Any], members: list[Trained], outputs: Tensor, y: Tensor, folder: Path) -> list[Path]:
    """Every figure the report calls for, as <kind>-<split>.png in `folder`; a single run's confusion matrix
    also goes to its TensorBoard."""
    from dlx import plots  # matplotlib only once a figure is drawn

    split, spec = report["split"], members[0].data.spec
    title = f"{Path(report['run']).name if len(members) == 1 else report['run']}: {split} split, {report['checkpoint']} checkpoint"
    figures = {}
    if "confusion_matrix" in report:
        where = title if report["threshold"] is None else f"{title}, threshold {report['threshold']:g}"
        figures["confusion_matrix"] = plots.confusion_matrix_figure(report["confusion_matrix"], spec.class_names, where)
        if len(members) == 1:
            members[0].run.writer.add_figure(f"eval/{split}/confusion_matrix", figures["confusion_matrix"],
                                             members[0].checkpoint["loop"]["step"])
    if "binary" in report:
        figures["roc"] = plots.roc_figure(report["binary"], spec.class_names, title)
    if "reject" in report:
        figures["reject"] = plots.reject_figure(report["reject"], title)
    if spec.task == REGRESSION:
        figures["predicted-vs-true"] = plots.predicted_vs_true_figure(outputs.cpu(), y.cpu(), title)
        figures["residuals"] = plots.residuals_figure(outputs.cpu(), y.cpu(), title)
    if "top_losses" in report:
        figures["top-losses"] = plots.gallery_figure(gallery.cards(report["top_losses"], members, split), title)
    return [plots.save(figure, folder / f"{kind}-{split}.png", dpi=120) for kind, figure in figures.items()]


def _load(runs: list[Path], request: Request) -> list[Trained]:
    if request.split not in SPLITS:
        raise DlxError(f"--split '{request.split}': choose train, val or test")
    for run in runs:
        if crossval.is_parent(run):
            raise DlxError(f"{run} is a cross-validation: evaluate one fold ({run}/fold-1) or its folds as a committee "
                           f"on the test split they share ({run}/fold-* --ensemble mean)")
    if request.ensemble is None:
        if len(runs) > 1:
            raise DlxError(f"{len(runs)} runs given: evaluate them as a committee with --ensemble vote or --ensemble mean")
        return [load_trained(runs[0], request.checkpoint, request.data_overrides)]
    if request.ensemble not in committee.MODES:
        raise DlxError(f"--ensemble '{request.ensemble}': choose vote or mean")
    if len(runs) < 2:
        raise DlxError("--ensemble: a committee needs two or more runs")
    return committee.load_members(runs, request.checkpoint, request.data_overrides, request.split)


def _check(request: Request, spec: DataSpec) -> None:
    analysis.check_threshold(request.threshold, spec.num_classes, spec.task)
    if request.margins and spec.task != CLASSIFICATION:
        raise DlxError(f"--reject-margin applies to classifiers, and this run's data is {spec.task}")
    if request.top_losses and spec.task not in (CLASSIFICATION, REGRESSION):
        raise DlxError(f"--top-losses applies to classification and regression, and this run's data is {spec.task}")


def _example(spec: DataSpec, index: int, output: Tensor, y: Tensor, loss: float, threshold: float | None) -> dict[str, Any]:
    if spec.task == CLASSIFICATION:
        predicted = int(output.argmax() if threshold is None else analysis.decide(output[None], threshold)[0])
        return {"index": index, "label": spec.class_names[int(y)], "predicted": spec.class_names[predicted],
                "probability": float(output[predicted]), "loss": loss}
    return {"index": index, "label": y.tolist(), "predicted": output.tolist(), "loss": loss}


def _record(members: list[Trained], report: dict[str, Any], folder: Path) -> None:
    """evaluation.json keeps one entry per split and checkpoint (a committee's goes to its own folder); the
    metrics of a single run also go to its TensorBoard."""
    key = f"{report['split']}/{report['checkpoint']}"
    path = folder / "evaluation.json"
    existing = _earlier(path)
    if len(members) == 1:
        run = members[0].run
        run.write_json("evaluation.json", {**existing, key: report})
        step = members[0].checkpoint["loop"]["step"]
        for name, value in report["metrics"].items():
            run.writer.add_scalar(f"eval/{report['split']}/{name}", value, step)
        run.close()
    else:
        from dlx.atomic import write_json

        write_json(path, {**existing, key: report})


def _earlier(path: Path) -> dict[str, Any]:
    """The reports already in evaluation.json; a damaged file, or a link planted in its place, starts afresh."""
    if path.is_symlink() or not path.is_file():
        return {}
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return earlier if isinstance(earlier, dict) else {}


def print_report(console: Console, report: dict[str, Any]) -> None:
    where = f", {report['checkpoint']} checkpoint" + (f" from epoch {report['epoch']}" if report["epoch"] is not None else "")
    if report["threshold"] is not None:
        where += f"; class 1 when its probability reaches {report['threshold']:g}"
    console.print(f"[bold]{report['run']}[/]: {report['split']} split ({report['examples']} examples){where}", highlight=False)
    names = list(report["metrics"])
    table = Table()
    table.add_column("run" if "members" in report else "metric", overflow="fold")
    if "members" in report:
        for name in names:
            table.add_column(name, justify="right")
        for member in report["members"]:
            table.add_row(member["run"], *(f"{member['metrics'][n]:.4f}" if n in member["metrics"] else "" for n in names))
        table.add_row(f"[bold]committee ({report['ensemble']})[/]",
                      *(f"[bold]{report['metrics'][n]:.4f}[/]" for n in names))
    else:
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
    _print_extras(console, report)


def _print_extras(console: Console, report: dict[str, Any]) -> None:
    if "binary" in report:
        b = report["binary"]
        (tn, fp), (fn, tp) = b["confusion_matrix"]
        console.print(f"ROC AUC {b['auc']:.4f}; at threshold {b['threshold']:g}: true positive rate "
                      f"{b['true_positive_rate']:.3f}, false positive rate {b['false_positive_rate']:.3f} "
                      f"(TN {tn}, FP {fp}, FN {fn}, TP {tp})", highlight=False)
    if "reject" in report:
        table = Table(title="reject option: answer only when the two largest probabilities differ by the margin or more")
        for column in ("margin", "rejection rate", "error rate (answered)", "answered", "errors"):
            table.add_column(column, justify="right")
        for row in report["reject"]:
            error = "-" if row["error_rate"] is None else f"{row['error_rate']:.4f}"
            table.add_row(f"{row['margin']:g}", f"{row['rejection_rate']:.4f}", error, str(row["answered"]), str(row["errors"]))
        console.print(table)
    if "top_losses" in report:
        table = Table(title="largest losses")
        for column in ("index", "label", "predicted", "loss"):
            table.add_column(column, justify="right")
        for row in report["top_losses"]:
            if "probability" in row:
                label, predicted = row["label"], f"{row['predicted']} (p {row['probability']:.2f})"
            else:
                label, predicted = (", ".join(f"{v:.4g}" for v in row[k]) for k in ("label", "predicted"))
            table.add_row(str(row["index"]), label, predicted, f"{row['loss']:.4g}")
        console.print(table)
    for path in report["figures"]:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
