"""Predictions of a trained run (or a committee of runs) on new inputs: each input standardised with the run's own
statistics, the model's answer, and one row per input: the class, its probability and the top k (classification,
with the two-class threshold and the reject option), or the value(s) (regression)."""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dlx import analysis, committee
from dlx.data.base import CLASSIFICATION, LANGUAGE, DataSpec
from dlx.errors import DlxError
from dlx.predict import output
from dlx.predict.inputs import Batch, Inputs, Table
from dlx.predict.output import Row

DEFAULT_OUT = "predictions.csv"


@dataclass
class Options:
    """How to predict; the defaults give each input's most probable class (or its values) from the best checkpoint."""

    checkpoint: str = "best"
    top_k: int = 1  # classification: the k most probable classes of each input
    batch_size: int | None = None  # None: the run's train.eval_batch_size
    threshold: float | None = None  # two classes: the second class when its probability reaches this (default 0.5)
    reject_margin: float | None = None  # refuse ('rejected') when the two largest probabilities differ by less
    ensemble: committee.Mode | None = None  # several runs answer together: vote or mean
    skip_bad: bool = False  # list unreadable inputs and predict the rest, instead of stopping at the first
    device: str | None = None


@dataclass
class Predictions:
    """What predict returns: a row per input (unless they went to a sink), the outputs as an array, and the files
    that could not be read (with --skip-bad)."""

    spec: DataSpec
    count: int = 0
    rows: list[Row] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    written: Path | None = None  # the file the rows went to, if they did

    @property
    def array(self) -> np.ndarray:
        """(N, C) probabilities or (N, k) values of the inputs kept."""
        return np.concatenate(self.outputs) if self.outputs else np.zeros((0, self.spec.num_outputs), np.float32)


class Predictor:
    """One run or a committee: raw inputs in, probabilities or values out."""

    def __init__(self, runs: list[Path], options: Options):
        self.options = options
        self.members = committee.open_runs(runs, options.ensemble, options.checkpoint, [], "test", "predict",
                                           options.device)
        self.spec = self.members[0].spec
        if self.spec.task == LANGUAGE:
            raise DlxError(f"{runs[0]} is a language model: it continues text; use `dlx generate {runs[0]}`")
        _check(options, self.spec)
        self.batch_size = options.batch_size or self.members[0].config.train.eval_batch_size
        self.standardizers = [m.standardizer for m in self.members]
        self.has_targets = False  # some inputs carry a true answer: every row gets a target, empty where unknown

    @functools.cache  # noqa: B019  (one predictor per command: read the training data once for every CSV given)
    def table(self) -> Table:
        """The run's table columns, read from its dataset (the training CSV's header and words)."""
        from dlx import build

        data = build.dataset(self.members[0].config)
        return Table(getattr(data, "columns", ()), getattr(data, "target", ""))

    @torch.no_grad()
    def outputs(self, x: Tensor) -> Tensor:
        """Raw inputs (n, *in_shape) -> (n, C) probabilities or (n, k) values, on the CPU."""
        answers = []
        for member, standardizer in zip(self.members, self.standardizers):
            inputs = x.to(member.device, torch.float32)
            out = member.model(standardizer(inputs) if standardizer is not None else inputs)
            if self.spec.task == CLASSIFICATION and out.dim() != 2:
                raise DlxError(f"{member.run.path}: its model answers per step (outputs of shape {tuple(out.shape[1:])}); "
                               f"dlx predict gives one answer per input: use dlx evaluate")
            answers.append(out.softmax(dim=1) if self.spec.task == CLASSIFICATION else out.flatten(1))
        combined = committee.combine(answers, self.options.ensemble, self.spec.task) if self.options.ensemble else answers[0]
        return combined.float().cpu()

    def rows(self, batch: Batch, outputs: Tensor) -> list[Row]:
        if self.spec.task != CLASSIFICATION:
            values = outputs.tolist()
            return [self._with_target({"input": name, "value": v if len(v) > 1 else v[0]}, batch, i)
                    for i, (name, v) in enumerate(zip(batch.names, values))]
        names, k = self.spec.class_names, min(self.options.top_k, self.spec.num_classes)
        top = outputs.topk(max(k, 2) if self.spec.num_classes >= 2 else 1, dim=1)
        chosen = top.indices[:, 0]
        if self.options.threshold is not None:
            chosen = (outputs[:, 1] >= self.options.threshold).long()
        rejected = (top.values[:, 0] - top.values[:, 1] < self.options.reject_margin
                    if self.options.reject_margin is not None else torch.zeros(len(outputs), dtype=torch.bool))
        rows = []
        for i, name in enumerate(batch.names):
            c = int(chosen[i])
            row: Row = {"input": name, "predicted": "rejected" if rejected[i] else names[c],
                        "probability": float(outputs[i, c])}
            if k > 1:
                row["top_k"] = [[names[int(j)], float(p)] for j, p in zip(top.indices[i, :k], top.values[i, :k])]
            rows.append(self._with_target(row, batch, i))
        return rows

    def _with_target(self, row: Row, batch: Batch, i: int) -> Row:
        if not self.has_targets:
            return row
        target = "" if batch.targets is None else batch.targets[i]
        return {"input": row["input"], "target": target, **{k: v for k, v in row.items() if k != "input"}}


def predict(runs: list[Path | str] | Path | str, inputs: list[str | Path] | str | Path, options: Options | None = None,
            out: Path | None = None, on_batch: Callable[[int, int], None] | None = None,
            keep_up_to: int | None = None) -> Predictions:
    """Predict every input with the run (or a committee of runs). The rows go to `out` (.csv or .jsonl) batch by batch
    when given, else they are kept in the result with the outputs; with `keep_up_to`, more inputs than that go to
    predictions.csv instead (never over an existing file). `on_batch(done, total)` follows the work."""
    options = options or Options()
    runs = [Path(runs)] if isinstance(runs, (str, Path)) else [Path(r) for r in runs]
    texts = [str(inputs)] if isinstance(inputs, (str, Path)) else [str(i) for i in inputs]
    predictor = Predictor(runs, options)
    found = Inputs(predictor.spec, predictor.table, options.skip_bad).add(texts)
    predictor.has_targets = found.has_targets
    result = Predictions(predictor.spec, skipped=found.bad)
    if out is None and keep_up_to is not None and len(found) > keep_up_to:
        out = Path(DEFAULT_OUT)
        if out.exists():
            raise DlxError(f"{len(found)} inputs go to a file, and {out} exists already; name another with --out")
    if out is None:
        _run(predictor, found, result, on_batch, None)
        return result
    with output.file_sink(out) as sink:
        _run(predictor, found, result, on_batch, sink)
    result.written = out
    return result


def _run(predictor: Predictor, found: Inputs, result: Predictions, on_batch: Callable[[int, int], None] | None,
         sink: Callable[[list[Row]], None] | None) -> None:
    total = len(found)
    for batch in found.batches(predictor.batch_size):
        outputs = predictor.outputs(batch.x)
        rows = predictor.rows(batch, outputs)
        if sink is not None:
            sink(rows)
        else:
            result.rows += rows
            result.outputs.append(outputs.numpy())
        result.count += len(rows)
        if on_batch is not None:
            on_batch(result.count, total)
    if not result.count and found.bad:  # nothing predicted: no empty file, and an exit code that says so
        raise DlxError(f"none of the {len(found.bad)} inputs could be read; the first: {found.bad[0][1]}")


def _check(options: Options, spec: DataSpec) -> None:
    analysis.check_threshold(options.threshold, spec.num_classes, spec.task)
    if options.top_k < 1:
        raise DlxError(f"--top-k {options.top_k}: give the number of classes to list (1 or more)")
    if options.top_k > 1 and spec.task != CLASSIFICATION:
        raise DlxError(f"--top-k applies to classifiers, and this run's data is {spec.task}; leave it out")
    if options.reject_margin is not None:
        if spec.task != CLASSIFICATION:
            raise DlxError(f"--reject-margin applies to classifiers, and this run's data is {spec.task}")
        analysis.parse_margins([str(options.reject_margin)])  # the same range check as evaluate's
    if options.batch_size is not None and options.batch_size < 1:
        raise DlxError(f"--batch-size {options.batch_size}: give 1 or more")
