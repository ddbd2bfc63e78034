"""`dlx explain`: apply explainers to samples of a trained run and write what they found.

For every sample, in <out>/<sample>/: a PNG per method (the course's panel: input, raw map, map rescaled to
the input and smoothed, overlay; a bar chart for tables; the sequence and the map as heat maps over time steps x
features; attention maps), the raw arrays (.npy), a comparison figure when several methods drew maps, and
explanation.json. The same figures go to the run's TensorBoard.
Everything the user asked for is checked, and every explanation computed, before anything is written.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dlx import plots
from dlx.config import Note, apply_overrides, unheard
from dlx.data.base import CLASSIFICATION, DataSpec
from dlx.errors import ConfigError, DlxError, did_you_mean
from dlx.explain import inputs, layers, render
from dlx.explain.base import (Explanation, default_sigma, in_course_order, refuse_unsuited, to_input_size,
                              unsuited)
from dlx.explain.steps import answering
from dlx.registry import explainers
from dlx.run.records import check_output_folder
from dlx.run.trained import Trained, open_trained
from dlx.atomic import write_atomic, write_json


def choose_methods(names: list[str], model: torch.nn.Module, x: Tensor) -> tuple[list[str], list[str]]:
    """The methods to run on `model` (inputs like `x`), in the order given, and a line for each method that 'all'
    skips because it cannot explain this model; 'all' is every method that can, in the course's order. A method
    named on its own that cannot is a DlxError."""
    chosen: list[str] = []
    skipped: list[str] = []
    for name in names:
        for method in in_course_order() if name == "all" else [explainers.get(name).name]:
            reason = unsuited(method, model, x)
            if reason is None:
                chosen.append(method)
            elif name != "all":
                refuse_unsuited(method, model, x)
            else:
                skipped.append(f"skipped {method}: it {reason}")
    return list(dict.fromkeys(chosen)), list(dict.fromkeys(skipped))  # each once, in the order first met


def method_settings(methods: list[str], overrides: list[str], layer: str | None) -> dict[str, dict[str, Any]]:
    """`--set METHOD.KEY=VALUE` (and --layer for gradcam), validated against each method's settings."""
    given = apply_overrides({}, list(overrides))
    if layer is not None:
        given.setdefault("gradcam", {})["layer"] = layer
    for method, values in given.items():
        explainers.get(method)
        if method not in methods:
            flag = "--layer" if method == "gradcam" and layer is not None else f"--set {method}.*"
            raise DlxError(f"{flag} configures '{method}', which is not among the methods run ({', '.join(methods)})")
        if not isinstance(values, dict):
            raise DlxError(f"--set {method}=...: give a setting, e.g. --set {method}.KEY=VALUE")
    problems, resolved = [], {}
    for method in methods:
        try:
            resolved[method] = explainers.get(method).resolve(given.get(method, {}), method)
        except ConfigError as e:
            problems += e.problems
    if problems:
        raise ConfigError(problems)
    return resolved


def class_index(target: str, spec: DataSpec) -> int | None:
    """--target as a class index or name; None for 'predicted'."""
    if target == "predicted":
        return None
    if target in spec.class_names:
        return spec.class_names.index(target)
    try:
        index = int(target)
    except ValueError:
        raise DlxError(f"--target '{target}': not a class of this model{did_you_mean(target, spec.class_names)}, "
                       f"nor 'predicted'") from None
    if not 0 <= index < spec.num_classes:
        raise DlxError(f"--target {index}: out of range; this model has {spec.num_classes} classes "
                       f"(0..{spec.num_classes - 1}) or 'predicted'")
    return index


def explainable(run_path: str | Path, which: str, device: str | None) -> Trained:
    """The trained run, if dlx explain can explain it: a classifier of images (C, H, W), table rows (F,) or
    sequences (T, F)."""
    trained = open_trained(run_path, which, device=device)
    trained.require_objective("supervised", "dlx explain")
    if trained.spec.task != CLASSIFICATION:
        raise DlxError(f"{trained.run.path}: dlx explain explains classifiers, and this run's task is {trained.spec.task}")
    return trained


def list_layers(run_path: str | Path, which: str = "best", device: str | None = None) -> tuple[list[layers.Layer], str | None]:
    """Every layer with its output shape for one sample, and GradCAM's default (the last conv layer)."""
    trained = explainable(run_path, which, device)
    x = torch.zeros(1, *trained.spec.in_shape, device=trained.device)
    convs = layers.conv_layers(trained.model)
    return layers.trace(trained.model, x), convs[-1][0] if convs else None


def explain(run_path: str | Path, methods: list[str], *, files: list[Path] = (), indices: list[int] = (),
            split: str = "test", target: str = "predicted", settings: list[str] = (), layer: str | None = None,
            out: Path | None = None, which: str = "best", device: str | None = None,
            smooth: float | None = None, step: int | None = None, note: Note = unheard) -> list[Path]:
    """Explain every sample with every method; returns the folders written, one per sample. Every explanation
    is computed before the first file is written, so a method that refuses leaves nothing behind. A model with a
    prediction per step is explained at `step` (default: the last); `note` hears a line for each method that
    'all' skips."""
    if files and indices:
        raise DlxError("give image files with --input or rows of a split with --index, not both")
    if not files and not indices:
        raise DlxError("give the samples to explain: image files with --input, or rows of a split with --index")
    if out is not None:
        check_output_folder(Path(out))
    trained = explainable(run_path, which, device)
    spec = trained.spec
    chosen, skipped = choose_methods(methods, trained.model, torch.zeros(1, *spec.in_shape, device=trained.device))
    resolved = method_settings(chosen, settings, layer)
    fixed_target = class_index(target, spec)
    standardizer = trained.data.standardizer
    samples = (inputs.from_files(list(files), spec, standardizer, trained.device) if files
               else inputs.from_split(trained.data, split, list(indices)))
    found = [_explain_sample(trained, sample, chosen, resolved, fixed_target, step) for sample in samples]
    inside_run = out is None
    out = Path(out) if out is not None else trained.run.path / "explanations"
    linked = [p for p in (out, *(out / s.name for s in samples)) if inside_run and p.is_symlink()]
    if linked:  # a run folder from elsewhere may carry links that would take the files out of it
        raise DlxError(f"{linked[0]}: a symbolic link in the run folder; dlx writes explanations there into real folders "
                       "only (remove the link, or choose a folder with --out)")
    for line in skipped:
        note(line)
    trained.run.claim("explain it")  # its TensorBoard gets the figures, whatever --out says
    try:
        return [_write(trained, sample, report, explanations, out / sample.name, smooth)
                for sample, (report, explanations) in zip(samples, found)]
    finally:
        trained.run.close()


def _explain_sample(trained: Trained, sample: inputs.Sample, methods: list[str], settings: dict[str, dict],
                    fixed_target: int | None, step: int | None) -> tuple[dict[str, Any], dict[str, Explanation]]:
    """The model's prediction for the sample, and every method's explanation of the target class (at `step` for a
    model with a prediction per step)."""
    names, x = trained.data.spec.class_names, sample.x
    with torch.no_grad():
        model, step = answering(trained.model, trained.model(x), step)
        logits = model(x)[0]
    probabilities = logits.softmax(dim=0)
    predicted = int(logits.argmax())
    target = predicted if fixed_target is None else fixed_target
    label = sample.label if sample.label is None or step is None else sample.label[step]
    report: dict[str, Any] = {
        "run": str(trained.run.path), "input": sample.source,
        "true_class": None if label is None else names[int(label)],
        **({} if step is None else {"step": step}),
        "predicted": {"index": predicted, "class": names[predicted], "probability": float(probabilities[predicted])},
        "probabilities": {name: float(p) for name, p in zip(names, probabilities)},
        "target": {"index": target, "class": names[target], "logit": float(logits[target])},
        "methods": {},
    }
    return report, {method: explainers.get(method).build(model, x, target, **settings[method]) for method in methods}


def _write(trained: Trained, sample: inputs.Sample, report: dict[str, Any], explanations: dict[str, Explanation],
           folder: Path, smooth: float | None) -> Path:
    """<folder>/: a figure and the arrays per method, the comparison figure, explanation.json; figures to TensorBoard."""
    spec, x, standardizer = trained.data.spec, sample.x, trained.data.standardizer
    folder.mkdir(parents=True, exist_ok=True)
    writer, step = trained.run.writer, trained.checkpoint.step
    image = inputs.for_display(x, standardizer) if spec.is_image else None
    sequence = inputs.sequence_for_display(x, standardizer) if x.dim() == 3 else None
    predicted, target = report["predicted"], report["target"]
    at = f" at step {report['step']}" if "step" in report else ""
    title = (f"{sample.source}: predicted {predicted['class']} ({predicted['probability']:.2f}){at}, "
             f"explaining {target['class']}")
    compared: dict[str, np.ndarray] = {}  # maps at the input's size: the rescaled ones of images, a sequence's own
    for method, explanation in explanations.items():
        entry: dict[str, Any] = {"params": explanation.params, "arrays": _save_arrays(folder, method, explanation)}
        if explanation.kind == "map":
            size = tuple(x.shape[-2:])
            sigma = default_sigma(size) if smooth is None else smooth
            rescaled = to_input_size(explanation.raw, size, sigma).cpu().numpy()
            write_atomic(folder / f"{method}_rescaled.npy", _npy(rescaled))
            entry["arrays"].append(f"{method}_rescaled.npy")
            entry["rescaled"] = {"size": list(size), "smoothing_sigma_pixels": sigma}
            compared[method] = rescaled
            segments = explanation.extras.get("segments")
            caption = f"{method}  |  {title}" + (f"\n{explanation.note}" if explanation.note else "")
            figure = render.panel(image, explanation.raw.cpu().numpy(), rescaled, caption,
                                  None if segments is None else segments.cpu().numpy())
        elif explanation.kind == "features":
            feature_names = [f"feature {i}" for i in range(spec.in_shape[0])]
            values = explanation.raw.cpu().numpy()
            entry["attributions"] = dict(zip(feature_names, map(float, values)))
            figure = render.bars(values, feature_names, f"{method}  |  {title}")
        elif explanation.kind == "sequence":
            compared[method] = explanation.raw.cpu().numpy()
            figure = render.sequence_panel(sequence, compared[method], f"{method}  |  {title}")
        elif explanation.kind == "attention":
            names = explanation.params["maps"]
            maps = [explanation.raw, *(explanation.extras[name] for name in names[1:])]
            figure = render.attention({n: m.cpu().numpy() for n, m in zip(names, maps)}, f"{method}  |  {title}")
        elif explanation.kind == "image":
            figure = render.picture(inputs.for_display(explanation.raw, standardizer), f"{method}: class {target['class']}")
        else:
            figure = render.filter_grid(explanation.raw.cpu().numpy(), f"{method}: {explanation.params['layer']}")
        if explanation.ranking is not None:
            entry["ranking"] = explanation.ranking
        if explanation.note is not None:
            entry["note"] = explanation.note
        entry["figure"] = _save_figure(figure, folder / f"{method}.png", writer, f"explain/{sample.name}/{method}", step)
        report["methods"][method] = entry
    if len(compared) > 1:
        figure = (render.comparison(image, compared, title) if sequence is None
                  else render.sequence_comparison(sequence, compared, title))
        report["comparison"] = _save_figure(figure, folder / "comparison.png", writer, f"explain/{sample.name}/comparison", step)
    write_json(folder / "explanation.json", report)
    writer.flush()
    return folder


def _save_arrays(folder: Path, method: str, explanation: Explanation) -> list[str]:
    arrays: dict[str, Tensor] = {method: explanation.raw, **{f"{method}_{k}": v for k, v in explanation.extras.items()}}
    for name, values in arrays.items():
        write_atomic(folder / f"{name}.npy", _npy(values.detach().cpu().numpy()))
    return [f"{name}.npy" for name in arrays]


def _npy(values: np.ndarray) -> bytes:
    """An array as .npy bytes. Every file goes through write_atomic: a kill leaves no half file, and a link planted
    in a run folder (one from elsewhere) is replaced, never written through."""
    buffer = io.BytesIO()
    np.save(buffer, values)
    return buffer.getvalue()


def _save_figure(figure, path: Path, writer, tag: str, step: int) -> str:
    """The same pixels to the PNG file and to TensorBoard."""
    rgb = plots.pixels(figure)
    plots.save_pixels(rgb, path)
    writer.add_image(tag, rgb, step, dataformats="HWC")
    return path.name
