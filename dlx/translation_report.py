"""`dlx evaluate` of an encoder-decoder run: its greedy outputs on a split, measured by every seq2seq metric
(exact-sequence and token accuracy, BLEU), the same two accuracies by source length (where a decoder without
attention, which must carry the whole source in one state, falls behind on long inputs) and its first mistakes."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor

from dlx import evaluate as evaluation
from dlx import build, registry, tables
from dlx.data.base import SEQ2SEQ
from dlx.data.sequence_pairs import reencoded, source_lengths, vocabularies
from dlx.errors import DlxError
from dlx.models.seq2seq_decode import greedy
from dlx.run.trained import Trained, open_trained
from dlx.sequence_metrics import exact_and_tokens

MISTAKES = 10  # shown in the report


def _check(request: evaluation.Request) -> None:
    evaluation.refuse_unread(request, "this run translates (its report measures its outputs)")
    if request.split not in evaluation.SPLITS:
        raise DlxError(f"--split '{request.split}': choose train, val or test")


def run_split(trained: Trained, split: str) -> tuple[Tensor, Tensor]:
    """A split of the run's data (or of the data --set points to) in the ids of the run's own vocabularies: other
    pairs, or fewer of them, have vocabularies of their own, and their sources may be longer than the run's."""
    data = build.splits(trained.config, trained.device)
    source_vocab, target_vocab = vocabularies(trained.spec)
    x, y = data[split]
    return (reencoded(x, data.spec.source_names, source_vocab, "the sources"),
            reencoded(y, data.spec.class_names, target_vocab, "the targets"))


def evaluate(run_path: Path, request: evaluation.Request) -> dict[str, Any]:
    _check(request)
    trained = open_trained(run_path, request.checkpoint, request.data_overrides)
    x, y = run_split(trained, request.split)
    targets = y[:, 1:]  # what follows <s>
    size = trained.config.train.eval_batch_size
    with torch.no_grad():
        predicted = torch.cat([greedy(trained.model, x[i : i + size], targets.shape[1]) for i in range(0, len(x), size)])
    spec = trained.spec
    # BLEU counts words: on outputs without spaces (the toy tasks) it is 0 whatever the model does
    names = tuple(name for name in registry.metrics.names() if name != "bleu" or " " in spec.class_names)
    metrics = evaluation.registered(spec, SEQ2SEQ, names)
    for metric in metrics.values():
        metric.to(predicted.device).update(predicted, targets)
    exact, right, real = exact_and_tokens(predicted, targets)
    lengths = source_lengths(x)
    by_length = [{"source_length": int(n), "examples": int((lengths == n).sum()),
                  "sequence_accuracy": exact[lengths == n].float().mean().item(),
                  "token_accuracy": (right[lengths == n].sum() / real[lengths == n].sum()).item()}
                 for n in lengths.unique().tolist()]
    source_vocab, target_vocab = vocabularies(spec)
    mistakes = [{"index": i, "source": source_vocab.decode(x[i].tolist()), "target": target_vocab.decode(targets[i].tolist()),
                 "output": target_vocab.decode(predicted[i].tolist())} for i in (~exact).nonzero().flatten()[:MISTAKES].tolist()]
    report: dict[str, Any] = {
        "run": str(trained.run.path), "ensemble": None, "split": request.split, "checkpoint": request.checkpoint,
        "examples": len(x), "task": SEQ2SEQ, "epoch": trained.checkpoint.epoch, "threshold": None,
        "metrics": {name: metric.compute().item() for name, metric in metrics.items()},
        "by_source_length": by_length, "mistakes": mistakes, "figures": [],
    }
    if request.data_overrides:
        report["data"] = list(request.data_overrides)
    folder = request.out or trained.run.path
    trained.run.claim("evaluate it")
    try:
        name = evaluation._report_name(request)
        folder.mkdir(parents=True, exist_ok=True)
        evaluation._record([trained], report, folder / f"{name}.json", "eval" + name.removeprefix("evaluation"))
    finally:
        trained.run.close()
    return report


def print_report(console: Console, report: dict[str, Any]) -> None:
    console.print(f"[bold]{report['run']}[/]: {report['split']} split ({report['examples']} examples), "
                  f"{report['checkpoint']} checkpoint from epoch {report['epoch']}; greedy outputs", highlight=False)
    console.print(tables.table(["metric", "value"], report["metrics"].items()))
    console.print(tables.table(["source length", "examples", "sequence accuracy", "token accuracy"], [
        (row["source_length"], row["examples"], row["sequence_accuracy"], row["token_accuracy"])
        for row in report["by_source_length"]], "by source length"))
    if report["mistakes"]:
        console.print(tables.table([tables.Column("index"), *(tables.Column(k, text=True) for k in ("source", "target", "output"))], [
            (row["index"], row["source"], row["target"], row["output"]) for row in report["mistakes"]],
            f"the first {len(report['mistakes'])} mistakes"))
