"""`dlx evaluate`: the metrics of a trained run, or of a committee of runs, on a split, as a table, JSON and
figures: the confusion matrix, the reject option's curve, the ROC curve of a two-class classifier, a gallery
of the worst examples, and the residuals of a regression."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (MulticlassConfusionMatrix, MulticlassF1Score, MulticlassPrecision,
                                         MulticlassRecall)

from dlx import analysis, committee, crossval, gallery, registry, tables
from dlx.data.base import CLASSIFICATION, LANGUAGE, RECONSTRUCTION, REGRESSION, DataSpec
from dlx.atomic import write_json
from dlx.config import plain_name
from dlx.errors import DlxError
from dlx.run.trained import Trained

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


def registered(spec: DataSpec, task: str, names: tuple[str, ...] | None = None) -> dict[str, Metric]:
    """The metrics registry's entries for `task` (or those of `names`) that apply to this data, built for it: the
    report's numbers are the ones training logs under the same names."""
    entries = registry.metrics.list() if names is None else [registry.metrics.get(n) for n in names]
    return {e.name: e.build(spec) for e in entries
            if e.meta.get("task") == task and spec.num_classes >= e.meta.get("min_classes", 0)}


def classification_metrics(spec: DataSpec) -> MetricCollection:
    """Every registered classification metric, and per class precision, recall, F1 and the confusion matrix."""
    k = spec.num_classes
    return MetricCollection({
        **registered(spec, CLASSIFICATION),
        "per_class_precision": MulticlassPrecision(k, average="none"),
        "per_class_recall": MulticlassRecall(k, average="none"),
        "per_class_f1": MulticlassF1Score(k, average="none"),
        "confusion_matrix": MulticlassConfusionMatrix(k),
    })


def reconstruction_metrics(spec: DataSpec) -> MetricCollection:
    """An autoencoder's errors over every reconstructed value, whatever the input's shape."""
    return MetricCollection(registered(spec, REGRESSION, ("mse", "rmse", "mae")))


def regression_metrics(spec: DataSpec) -> MetricCollection:
    return MetricCollection(registered(spec, REGRESSION))


@torch.no_grad()
def predict(trained: Trained, split: str) -> Tensor:
    """The model's answers on a split, in batches: class probabilities (N, C) or regression outputs (N, k)."""
    size = trained.config.train.eval_batch_size
    outputs = torch.cat([trained.model(x) for x, _ in trained.data.batches(split, size)])  # floats a batch at a time
    return outputs.softmax(dim=1) if trained.data.spec.task == CLASSIFICATION else outputs


def language_metrics(spec: DataSpec) -> MetricCollection:
    """Perplexity and bits per character, as training logs them."""
    return MetricCollection(registered(spec, LANGUAGE))


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
        "epoch": members[0].checkpoint.epoch if len(members) == 1 else None,
        "threshold": threshold, "metrics": scalars(values),
    }
    if request.ensemble:
        report["members"] = [{"run": str(m.run.path), "epoch": m.checkpoint.epoch,
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
    if request.data_overrides:
        report["data"] = list(request.data_overrides)
    folder = request.out or (members[0].run.path if len(members) == 1 else Path(f"committee-{request.ensemble}"))
    if len(members) == 1:  # its TensorBoard (and, without --out, evaluation.json) are written into the run
        members[0].run.claim("evaluate it")
    try:
        name = _report_name(request)
        tag = "eval" + name.removeprefix("evaluation")  # TensorBoard's: eval, or eval-<data> for other data
        figures = folder / name if request.data_overrides else folder
        if figures.is_symlink():  # a run folder from elsewhere may carry links that would take the figures out of it
            raise DlxError(f"{figures}: a symbolic link; dlx writes figures into real folders only")
        figures.mkdir(parents=True, exist_ok=True)
        report["figures"] = [str(p) for p in _figures(report, members, outputs, y, figures, tag)]
        _record(members, report, folder / f"{name}.json", tag)
    finally:
        members[0].run.close()
    return report


def _report_name(request: Request) -> str:
    """'evaluation' for the run's own data; for other data (--set data.*), a name of its own, evaluation-<file>-<hash>,
    so that evaluating elsewhere never replaces the run's own report and figures."""
    if not request.data_overrides:
        return "evaluation"
    given = dict(o.split("=", 1) for o in request.data_overrides if "=" in o)
    stem = plain_name(Path(given["data.path"]).stem, "data") if "data.path" in given else "data"
    digest = hashlib.sha256("\n".join(sorted(request.data_overrides)).encode()).hexdigest()[:8]
    return f"evaluation-{stem}-{digest}"


def _figures(report: dict[str, Any], members: list[Trained], outputs: Tensor, y: Tensor, folder: Path,
             tag: str) -> list[Path]:
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
            members[0].run.writer.add_figure(f"{tag}/{split}/confusion_matrix", figures["confusion_matrix"],
                                             members[0].checkpoint.step)
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
    return committee.open_runs(runs, request.ensemble, request.checkpoint, request.data_overrides, request.split,
                               "evaluate")


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


def _record(members: list[Trained], report: dict[str, Any], path: Path, tag: str) -> None:
    """The report's json file keeps one entry per split and checkpoint; the metrics of a single run also go to its
    TensorBoard, under `tag`."""
    key = f"{report['split']}/{report['checkpoint']}"
    write_json(path, {**_earlier(path), key: report})
    if len(members) == 1:
        step = members[0].checkpoint.step
        for name, value in report["metrics"].items():
            members[0].run.writer.add_scalar(f"{tag}/{report['split']}/{name}", value, step)


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
    if "members" in report:
        rows = [(member["run"], *(member["metrics"].get(n) for n in names)) for member in report["members"]]
        rows.append((f"[bold]committee ({report['ensemble']})[/]", *(f"[bold]{tables.number(report['metrics'][n])}[/]"
                                                                     for n in names)))
        console.print(tables.table([tables.Column("run", text=True, fold=True), *names], rows))
    else:
        console.print(tables.table(["metric", "value"], report["metrics"].items()))
    if "per_class" in report:
        console.print(tables.table(["class", "precision", "recall", "f1", "support"], [
            (name, row["precision"], row["recall"], row["f1"], row["support"]) for name, row in report["per_class"].items()],
            "per class"))
    _print_extras(console, report)


def _print_extras(console: Console, report: dict[str, Any]) -> None:
    if "binary" in report:
        b = report["binary"]
        (tn, fp), (fn, tp) = b["confusion_matrix"]
        console.print(f"ROC AUC {b['auc']:.4f}; at threshold {b['threshold']:g}: true positive rate "
                      f"{b['true_positive_rate']:.3f}, false positive rate {b['false_positive_rate']:.3f} "
                      f"(TN {tn}, FP {fp}, FN {fn}, TP {tp})", highlight=False)
    if "reject" in report:
        console.print(tables.table(
            ["margin", "rejection rate", "error rate (answered)", "answered", "errors"],
            [(f"{row['margin']:g}", row["rejection_rate"], "-" if row["error_rate"] is None else row["error_rate"],
              row["answered"], row["errors"]) for row in report["reject"]],
            "reject option: answer only when the two largest probabilities differ by the margin or more"))
    if "top_losses" in report:
        rows = []
        for row in report["top_losses"]:
            if "probability" in row:
                label, predicted = row["label"], f"{row['predicted']} (p {row['probability']:.2f})"
            else:
                label, predicted = (", ".join(f"{v:.4g}" for v in row[k]) for k in ("label", "predicted"))
            rows.append((row["index"], label, predicted, row["loss"]))
        console.print(tables.table([tables.Column("index"), "label", "predicted", "loss"], rows, "largest losses"))
    for path in report["figures"]:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
