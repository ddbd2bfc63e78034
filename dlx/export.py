"""`dlx export`: a trained run as one file that runs without dlx (TorchScript or ONNX), with the preprocessing inside:
raw pixels in [0, 255] (images) or raw feature values (tables, sequences) in, probabilities (classifiers) or the model's
values out, any batch size. The file carries its metadata: class names, input shape and dtype, the run, dlx's version
and the config (TorchScript: the extra file dlx.json; ONNX: metadata_props, each value JSON).

`check` runs the exported file (torch.jit or onnxruntime) on the run's test split and compares it with dlx's own
predictions."""
from __future__ import annotations

import json
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

import dlx
from dlx.atomic import replacing
from dlx.data.base import CLASSIFICATION, LANGUAGE, DataSpec, Standardizer
from dlx.errors import DlxError
from dlx.run.records import check_output_file
from dlx.run.trained import Trained, open_trained

Format = Literal["torchscript", "onnx"]
FORMATS: dict[str, str] = {"torchscript": ".pt", "onnx": ".onnx"}
TOLERANCE = 1e-4  # the largest difference in probability (or value) --check accepts
PIXEL_SCALE = 255.0  # image inputs come as raw pixels; the run's data holds them in [0, 1]


class Packaged(nn.Module):
    """The run's model with its preprocessing and output: raw inputs -> scaled -> standardised -> model ->
    probabilities (classifiers) or values."""

    def __init__(self, model: nn.Module, spec: DataSpec, standardizer: Standardizer | None):
        super().__init__()
        self.model = model
        self.scale = 1.0 / PIXEL_SCALE if spec.is_image else 1.0
        self.classify = spec.task == CLASSIFICATION
        self.standardize = standardizer is not None
        self.register_buffer("mean", standardizer.mean.float() if standardizer is not None else torch.zeros(1))
        self.register_buffer("std", standardizer.std.float() if standardizer is not None else torch.ones(1))

    def forward(self, x: Tensor) -> Tensor:
        x = x.float() * self.scale
        if self.standardize:
            x = (x - self.mean) / self.std
        out = self.model(x)
        return out.softmax(dim=1) if self.classify else out


def metadata(trained: Trained) -> dict[str, Any]:
    spec = trained.spec
    return {
        "dlx_version": dlx.__version__, "run": trained.run.name, "task": spec.task,
        "class_names": list(spec.class_names),
        "input_shape": ["batch", *spec.in_shape], "input_dtype": "float32",
        "input": "raw pixels in [0, 255]" if spec.is_image else "raw feature values, as in the run's data",
        "output": "class probabilities" if spec.task == CLASSIFICATION else "the model's values",
        "epoch": trained.checkpoint.epoch, "config": trained.config.to_dict(),
    }


@dataclass
class Check:
    """The exported file against dlx on the test split."""

    examples: int
    max_difference: float
    same_class: float | None  # classifiers: the share of identical predicted classes

    @property
    def passed(self) -> bool:
        return self.max_difference <= TOLERANCE


def export(run: str | Path, format: str, out: Path | None = None, checkpoint: str = "best") -> Path:
    """Write the run as a TorchScript or ONNX file (default: RUN/export/model.pt or model.onnx); returns its path."""
    if format not in FORMATS:
        raise DlxError(f"--format '{format}': choose torchscript or onnx")
    trained = open_trained(run, checkpoint, device="cpu")
    trained.require_objective("supervised", "dlx export")
    if trained.spec.task == LANGUAGE:
        raise DlxError(f"{trained.run.path} is a language model: dlx export writes models that map one input to one "
                       f"answer; sample it with `dlx generate`")
    out = Path(out) if out is not None else trained.run.path / "export" / f"model{FORMATS[format]}"
    check_output_file(out)
    if (named := {suffix: name for name, suffix in FORMATS.items()}.get(out.suffix)) not in (None, format):
        raise DlxError(f"--out {out}: a {out.suffix} name for --format {format}; name it {FORMATS[format]} "
                       f"or give --format {named}")
    out.parent.mkdir(parents=True, exist_ok=True)
    packaged = Packaged(trained.model, trained.spec, trained.standardizer).eval()
    example = torch.zeros(2, *trained.spec.in_shape)
    (_torchscript if format == "torchscript" else _onnx)(packaged, example, metadata(trained), out)
    return out


@contextmanager
def _quiet():
    """torch.jit's deprecation notes and the exporters' remarks on their internals say nothing to the user: TorchScript
    files still load everywhere without dlx, which is what an export is for."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _torchscript(packaged: Packaged, example: Tensor, meta: dict[str, Any], out: Path) -> None:
    with torch.no_grad(), _quiet():
        traced = torch.jit.trace(packaged, example, check_trace=False)
        with replacing(out) as f:
            torch.jit.save(traced, f, _extra_files={"dlx.json": json.dumps(meta)})


def _onnx(packaged: Packaged, example: Tensor, meta: dict[str, Any], out: Path) -> None:
    try:
        import onnx
    except ImportError:
        raise DlxError("ONNX export needs the packages onnx, onnxruntime and onnxscript: pip install 'dlx[export]'") from None
    with tempfile.TemporaryDirectory() as folder, _quiet():
        raw = Path(folder) / "model.onnx"
        batch = torch.export.Dim("batch")
        torch.onnx.export(packaged, (example,), str(raw), input_names=["input"], output_names=["output"],
                          dynamic_shapes={"x": {0: batch}}, dynamo=True, verbose=False, external_data=False)
        model = onnx.load(str(raw))
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    with replacing(out) as f:
        f.write(model.SerializeToString())


def load_runner(path: Path, format: str):
    """A function from a float32 numpy batch to the exported file's numpy outputs."""
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda x: session.run(None, {"input": x})[0]
    with _quiet():
        module = torch.jit.load(str(path), map_location="cpu")
    return lambda x: module(torch.from_numpy(x)).detach().numpy()


def check(run: str | Path, path: Path, format: str, checkpoint: str = "best") -> Check:
    """Run the exported file on the test split's raw inputs and compare with dlx's own predictions."""
    from dlx import evaluate

    trained = open_trained(run, checkpoint, device="cpu")
    x = trained.data["test"][0]
    raw = trained.standardizer.invert(x) if trained.standardizer is not None else x
    if trained.spec.is_image:
        raw = raw * PIXEL_SCALE
    expected = evaluate.predict(trained, "test").numpy()
    runner = load_runner(path, format)
    size = trained.config.train.eval_batch_size
    got = np.concatenate([runner(np.ascontiguousarray(raw[i : i + size].numpy(), dtype=np.float32))
                          for i in range(0, len(raw), size)])
    difference = float(np.abs(got - expected).max()) if len(got) else 0.0
    same = float((got.argmax(1) == expected.argmax(1)).mean()) if trained.spec.task == CLASSIFICATION else None
    return Check(len(got), difference, same)
