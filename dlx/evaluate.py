"""`dlx evaluate`: the metrics of a trained run, or of a committee of runs, on a split, as a table, JSON and
figures: the confusion matrix, the reject option's curve, the ROC curve of a two-class classifier, a gallery
of the worst examples, and the residuals of a regression."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import (MulticlassConfusionMatrix, MulticlassF1Score, MulticlassPrecision,
                                         MulticlassRecall)

from dlx import analysis, build, committee, crossval, embeddings, gallery, registry, tables
from dlx.data.base import CLASSIFICATION, LANGUAGE, RECONSTRUCTION, REGRESSION, SEQ2SEQ, DataSpec
from dlx.atomic import write_json
from dlx.config import load as load_config
from dlx.config import plain_name
from dlx.errors import DlxError
from dlx.run.records import check_output_folder
from dlx.run.trained import Trained, open_trained

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
    probes: embeddings.Probes = field(default_factory=lambda: embeddings.Probes([]))  # word-vector runs only
    judge: Path | None = None  # a generative run: the classifier judging its samples (None: the run's eval.judge)


def registered(spec: DataSpec, task: str, names: tuple[str, ...] | None = None) -> dict[str, Metric]:
    """The metrics registry's entries for `task` (or those of `names`) that apply to this data, built for it: the
    report's numbers are the ones training logs under the same names."""
    entries = registry.metrics.list() if names is None else [registry.metrics.get(n) for n in names]
    return {e.name: e.build(spec) for e in entries if e.meta.get("task") == task and not e.meta.get("embeddings")
            and spec.num_classes >= e.meta.get("min_classes", 0)}


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
def outputs_on(trained: Trained, split: str) -> Tensor:
    """The model's outputs on a split, in batches (floats a batch at a time): logits, regression outputs or
    embeddings."""
    size = trained.config.train.eval_batch_size
    return torch.cat([trained.model(x) for x, _ in trained.data.batches(split, size)])


def predict(trained: Trained, split: str) -> Tensor:
    """The model's answers on a split: class probabilities (N, C) or regression outputs (N, k)."""
    outputs = outputs_on(trained, split)
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
    if request.split not in SPLITS:
        raise DlxError(f"--split '{request.split}': choose train, val or test")
    if request.out is not None:
        check_output_folder(request.out)
    # one run's config, read once, says which report it gets; a committee, or a folder without one (said when the
    # run is opened), gets the supervised report
    config = load_config(runs[0] / "config.yaml") if len(runs) == 1 and (runs[0] / "config.yaml").is_file() else None
    objective = config.objective.name if config else None
    alone = config is not None and request.ensemble is None
    probed = request.probes.words or request.probes.analogies or request.probes.map_method is not None
    if probed and not (alone and objective in embeddings.OBJECTIVES):
        raise DlxError("--probe, --analogies and --map take a run of word vectors (objective skipgram or cbow)")
    if objective == "seq2seq":
        from dlx import translation_report  # an encoder-decoder's outputs are sequences, with a report of their own

        return translation_report.evaluate(runs[0], request)
    if alone and objective in embeddings.OBJECTIVES:
        return _word_vectors(runs[0], request)
    if alone and config.model.embedding_head is not None and not crossval.is_parent(runs[0]):
        return _evaluate_embedding(runs[0], request)  # retrieval is measured instead of predictions
    if request.judge is not None or (alone and config.eval.judge is not None and objective != "supervised"):
        return _evaluate_samples(runs, request)  # a generative run with a judge of its own (eval.judge)
    if objective not in (None, "supervised"):
        return _objective_report(runs[0], request)
    members = _load(runs, request)
    spec = members[0].data.spec
    _check(request, spec)
    y = members[0].data.targets(request.split)
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
    _write(report, members, request, lambda folder, tag: _figures(report, members, outputs, y, folder, tag))
    return report


def refuse_unread(request: Request, this: str) -> None:
    """One line for the first option given to a report that does not read it (a translation's, word vectors', an
    embedding's, a VAE's): the value would be dropped without a word. `this` says what the run is instead."""
    supervised, generative = "applies to runs of the supervised objective", "applies to a GAN's or a VAE's run"
    for option, given, applies in (("--ensemble", request.ensemble, supervised),
                                   ("--reject-margin", request.margins, supervised),
                                   ("--threshold", request.threshold is not None, supervised),
                                   ("--top-losses", request.top_losses, supervised),
                                   ("--judge", request.judge is not None, generative)):
        if given:
            raise DlxError(f"{option} {applies}; {this}")


def _objective_report(path: Path, request: Request) -> dict[str, Any]:
    """A run of another objective than supervised (a VAE, a GAN): the terms its validation logs, measured on the
    split, and the pictures its objective draws (a VAE's reconstructions, samples, traversal and latent map)."""
    trained = open_trained(path, request.checkpoint, request.data_overrides)
    name = trained.config.objective.name
    refuse_unread(request, f"{path} was trained with '{name}'")
    objective = build.objective(trained.config, trained.spec, trained.model, None)
    size = trained.config.train.eval_batch_size
    metrics = objective.measure(trained.model, trained.data.batches(request.split, size),
                                build.metrics(trained.config, trained.spec, trained.device))
    report: dict[str, Any] = {
        "run": str(trained.run.path), "ensemble": None, "split": request.split, "checkpoint": request.checkpoint,
        "examples": len(trained.data.parts[request.split][1]), "task": trained.spec.task, "objective": name,
        "epoch": trained.checkpoint.epoch, "threshold": None, "metrics": metrics,
    }

    def pictures(folder: Path, tag: str) -> list[Path]:
        from dlx import plots  # matplotlib only once a figure is drawn

        title = f"{trained.run.name}: {request.checkpoint} checkpoint"
        drawn = objective.pictures(trained.model, trained.data, request.split, title)
        return [plots.save(figure, folder / f"{kind}.png", dpi=120) for kind, figure in drawn.items()]

    _write(report, [trained], request, pictures)
    return report


def _write(report: dict[str, Any], members: list[Trained], request: Request,
           figures: Callable[[Path, str], list[Path]]) -> None:
    """The report's figures (drawn by `figures` into a folder, with TensorBoard's tag) and its json file: into the
    run folder (a committee: ./committee-<mode>) or --out, in a folder of their own for other data."""
    if request.data_overrides:
        report["data"] = list(request.data_overrides)
    folder = request.out or (members[0].run.path if len(members) == 1 else Path(f"committee-{request.ensemble}"))
    if len(members) == 1:  # its TensorBoard (and, without --out, evaluation.json) are written into the run
        members[0].run.claim("evaluate it")
    try:
        name = _report_name(request)
        tag = _tag(name)
        where = folder / name if request.data_overrides else folder
        if where.is_symlink():  # a run folder from elsewhere may carry links that would take the figures out of it
            raise DlxError(f"{where}: a symbolic link; dlx writes figures into real folders only")
        where.mkdir(parents=True, exist_ok=True)
        report["figures"] = [str(p) for p in figures(where, tag)]
        _record(members, report, folder / f"{name}.json", tag)
    finally:
        members[0].run.close()


def _word_vectors(run: Path, request: Request) -> dict[str, Any]:
    """A skipgram or cbow run: its loss, the probes' neighbours, analogies, the word map and the projector."""
    embeddings.check(request.probes)
    refuse_unread(request, f"{run} learned word vectors (their loss and probes are measured)")
    trained = open_trained(run, request.checkpoint, request.data_overrides)
    report: dict[str, Any] = {
        "run": str(trained.run.path), "ensemble": None, "split": request.split, "checkpoint": request.checkpoint,
        "examples": len(trained.data.parts[request.split][1]), "task": "word vectors", "epoch": trained.checkpoint.epoch,
        "threshold": None}

    def measured(folder: Path, tag: str) -> list[Path]:  # the word map goes with the report's other figures
        found = embeddings.report(trained, request.probes, request.split, folder,
                                  f"{trained.run.name}, {request.checkpoint} checkpoint")
        figures = found.pop("figures")
        report.update(found)
        return figures

    _write(report, [trained], request, measured)
    return report


def _evaluate_embedding(path: Path, request: Request) -> dict[str, Any]:
    """Retrieval within the split (every example a query against the split's others), queries beside their five
    nearest neighbours, and the embeddings in TensorBoard's projector."""
    from dlx import retrieval

    refuse_unread(request, f"{path} trained an embedding (retrieval is measured)")
    trained = open_trained(path, request.checkpoint, request.data_overrides)
    vectors, y = outputs_on(trained, request.split), trained.data.targets(request.split)
    metrics = MetricCollection({e.name: e.build(trained.spec) for e in registry.metrics.list()
                                if e.meta.get("embeddings")}).to(vectors.device)
    metrics.update(vectors, y)
    queries = retrieval.spread_queries(y, QUERIES)
    neighbours = retrieval.nearest(vectors, NEIGHBOURS)[queries]
    report: dict[str, Any] = {
        "run": str(trained.run.path), "ensemble": None, "split": request.split, "checkpoint": request.checkpoint,
        "examples": len(y), "task": "embedding", "epoch": trained.checkpoint.epoch, "threshold": None,
        "metrics": scalars(metrics.compute()), "measured": "within the split: each example a query against the others",
        "neighbours": [{"query": int(q), "label": trained.spec.class_names[int(y[q])],
                        "nearest": [int(n) for n in row], "same_class": [bool(y[n] == y[q]) for n in row]}
                       for q, row in zip(queries, neighbours)],
    }
    _write(report, [trained], request, lambda figures, tag: _embedding_figures(report, trained, vectors, figures, tag))
    return report


QUERIES, NEIGHBOURS = 10, 5  # queries drawn (a digit of each class), each beside its five nearest neighbours


def _embedding_figures(report: dict[str, Any], trained: Trained, vectors: Tensor, folder: Path,
                       tag: str) -> list[Path]:
    """The queries beside their nearest neighbours; the projector's points (class labels, images as sprites)."""
    from dlx import plots

    split = report["split"]
    x, y = trained.data[split]
    shown = trained.data.standardizer.invert(x) if trained.data.standardizer else x
    images = None
    if shown.dim() == 4 and shown.shape[1] in (1, 3):
        low = shown.amin(dim=(1, 2, 3), keepdim=True)
        images = ((shown - low) / (shown.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-12)).cpu()
    trained.run.writer.add_embedding(vectors.cpu(), metadata=[trained.spec.class_names[int(c)] for c in y],
                                     label_img=images, global_step=trained.checkpoint.step, tag=f"{tag}/{split}")
    title = f"{trained.run.path.name}: {split} split, {report['checkpoint']} checkpoint"
    figure = plots.gallery_figure(gallery.neighbour_cards(report["neighbours"], trained, split), title,
                                  per_row=NEIGHBOURS + 1, heading="each query, then its five nearest neighbours")
    return [plots.save(figure, folder / f"neighbours-{split}.png", dpi=120)]
def _evaluate_samples(runs: list[Path], request: Request) -> dict[str, Any]:
    """A generative run's samples judged by a classifier (dlx.judge), recorded like any other report."""
    from dlx import judge

    if len(runs) != 1 or request.ensemble:
        raise DlxError("--judge judges the samples of one generative run; give one run, without --ensemble")
    if request.split not in SPLITS:
        raise DlxError(f"--split '{request.split}': choose train, val or test")
    trained = open_trained(runs[0], request.checkpoint, request.data_overrides)
    report = {**judge.report(trained, request.split, request.judge), "checkpoint": request.checkpoint, "figures": []}
    folder, name = request.out or trained.run.path, _report_name(request)
    trained.run.claim("evaluate it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _record([trained], report, folder / f"{name}.json", _tag(name))
    finally:
        trained.run.close()
    return report


def _tag(report_name: str) -> str:
    """TensorBoard's tag of a report: eval, or eval-<data> for other data."""
    return "eval" + report_name.removeprefix("evaluation")


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
    for run in runs:
        scheme = crossval.scheme_of(run)
        if scheme is crossval.FOLDS:
            raise DlxError(f"{run} is a cross-validation: evaluate one fold ({run}/fold-1) or its folds as a committee "
                           f"on the test split they share ({run}/fold-* --ensemble mean)")
        if scheme is crossval.BAGGING:
            raise DlxError(f"{run} is a bagging committee: evaluate its members together ({run}/bag-* --ensemble vote) "
                           f"or one of them ({run}/bag-1)")
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
    if report["task"] == SEQ2SEQ:
        from dlx import translation_report

        return translation_report.print_report(console, report)
    where = f", {report['checkpoint']} checkpoint" + (f" from epoch {report['epoch']}" if report["epoch"] is not None else "")
    if report["threshold"] is not None:
        where += f"; class 1 when its probability reaches {report['threshold']:g}"
    console.print(f"[bold]{report['run']}[/]: {report['split']} split ({report['examples']} examples){where}", highlight=False)
    names = list(report["metrics"])
    if report.get("word_vectors"):
        embeddings.print_report(console, report)
    elif "members" in report:
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
