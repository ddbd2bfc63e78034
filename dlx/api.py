"""dlx from Python: train, open, evaluate, explain, predict with and generate from runs. The command line calls these
same functions; a user's mistake raises dlx.DlxError with the line the command would print.

    import dlx
    run = dlx.train("experiments/iris_mlp.yaml", set={"train.epochs": 5})
    run.predict("flowers.csv").rows
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from dlx import api_checks as checked
from dlx.errors import DlxError
from dlx.predict.core import Options as PredictOptions
from dlx.predict.core import Predictions, predict
from dlx.run.folder import Run as RunFolder

__all__ = ["Run", "PredictOptions", "Predictions", "open_run", "predict", "split_runs", "sweep", "train"]


class Run:
    """A run folder: its config, final metrics and logged history, and what can be done with its trained model."""

    def __init__(self, path: str | Path):
        self._folder = RunFolder.open(checked.path(path, "dlx.open_run"))
        self.path = self._folder.path

    def __repr__(self) -> str:
        return f"dlx.Run({str(self.path)!r})"

    @property
    def config(self) -> dict[str, Any]:
        """The run's resolved config, as config.yaml holds it."""
        from dlx.config import load

        return load(self._folder.config_path).to_dict()

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """The final metrics per split (summary.json), e.g. run.metrics['test']['accuracy']."""
        return self._folder.read_json("summary.json").get("metrics", {})

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every evaluation logged during training, in order: {'step': ..., 'epoch': ..., 'val/loss': ...}."""
        return self._folder.history()

    def model(self, checkpoint: str = "best") -> nn.Module:
        """The trained network, in eval mode on the CPU (inputs standardised as the run's data)."""
        from dlx.run.trained import open_trained

        return open_trained(self.path, checkpoint, device="cpu").model

    def predict(self, inputs: str | Path | list[str | Path], **options: Any) -> Predictions:
        """Answers on new inputs (image files, folders, globs, CSV tables, .npz/.pt arrays): .rows, one dict per input,
        and .array, the probabilities or values. Options as `dlx predict`'s: top_k, threshold, reject_margin, ..."""
        inputs = [str(checked.path(i, "run.predict")) for i in checked.paths(inputs, "run.predict")]
        return predict([self.path], inputs, checked.options(PredictOptions, options, "run.predict"))

    def evaluate(self, split: str = "test", **request: Any) -> dict[str, Any]:
        """`dlx evaluate`'s report on a split as a dict: 'metrics', and per class, reject and binary where asked."""
        from dlx import evaluate as evaluation

        request = checked.options(evaluation.Request, {"split": split, **request}, "run.evaluate")
        return evaluation.evaluate([self.path], request)

    def explain(self, inputs: list[str | Path] | list[int], method: str = "saliency", **settings: Any) -> list[np.ndarray]:
        """One method's explanation of each input (image files, or row numbers of the test split) as arrays; the
        figures and explanation.json are written under the run's explanations/ as `dlx explain` writes them."""
        from dlx.explain import run as explaining

        inputs = checked.paths(inputs, "run.explain")
        by_index = all(isinstance(i, int) and not isinstance(i, bool) for i in inputs)
        if not by_index:  # files, each a path: a row number among them is a mistake
            inputs = [checked.path(i, "run.explain") for i in inputs]
        checked.keywords(explaining.explain, settings, "run.explain",
                         taken=("run_path", "methods", "files", "indices", "note"))
        if not isinstance(method, str):
            raise DlxError(f"run.explain: method: expected one method's name (a str), got {method!r:.40}")
        folders = explaining.explain(self.path, [method], files=[] if by_index else [Path(i) for i in inputs],
                                     indices=list(inputs) if by_index else [], **settings)
        return [np.load(folder / f"{method}.npy") for folder in folders]

    def generate(self, prompt: str | None = None, **options: Any) -> str:
        """A language model's continuation of the prompt (options as `dlx generate`'s: max_new_tokens, temperature,
        top_k, top_p, strategy, seed, ...)."""
        from dlx.generate import run as generation

        request = checked.options(generation.Options, {"prompt": prompt, **options}, "run.generate", GENERATE_BOUNDS)
        return generation.generate(self.path, request)[0].text


# what the command line's options allow (typer's min and max), for the same values given from Python
GENERATE_BOUNDS = {"max_new_tokens": {"ge": 1}, "temperature": {"ge": 0.0}, "top_k": {"ge": 1},
                   "top_p": {"ge": 0.0, "le": 1.0}, "beam_width": {"ge": 1}, "num_samples": {"ge": 1},
                   "seed": {"ge": 0}}


def _override(key: str, value: Any) -> str:
    import yaml

    return f"{key}={value if isinstance(value, str) else yaml.safe_dump(value, default_flow_style=True).strip()}"


def train(experiment: str | Path, set: Mapping[str, Any] | None = None, name: str | None = None, quiet: bool = True,
          runs_dir: str | Path = "runs") -> Run:
    """Train an experiment (a YAML file) with `set` overriding config values ({'optimizer.lr': 0.01}); the run folder."""
    from dlx.config import load
    from dlx.train import loop

    if not isinstance(set, (Mapping, type(None))):
        raise DlxError(f"dlx.train: set: expected a mapping of config keys to values, e.g. {{'optimizer.lr': 0.01}}, "
                       f"got {type(set).__name__} {set!r:.40}")
    overrides = [_override(k, v) for k, v in (set or {}).items()] + ([f"name={name}"] if name else [])
    folder, _ = loop.start(load(checked.path(experiment, "dlx.train"), overrides),
                           checked.path(runs_dir, "dlx.train: runs_dir"), quiet=quiet)
    return Run(folder.path)


def open_run(path: str | Path) -> Run:
    """A run folder trained before (runs/<name>)."""
    return Run(path)


def sweep(sweep_file: str | Path, **options: Any) -> None:
    """A hyperparameter search (`dlx sweep`): trials, jobs, storage, study_name, resume, timeout, epochs, runs_dir."""
    from dlx import sweep as sweeps
    from dlx.sweep.engine import sweep as run_sweep

    sweep_file = checked.path(sweep_file, "dlx.sweep")
    checked.keywords(run_sweep, options, "dlx.sweep", taken=("path", "console"))
    sweeps.warm_up()
    run_sweep(sweep_file, **options)


def split_runs(arguments: list[str]) -> tuple[list[str], list[str]]:
    """`RUN [RUN...] INPUT...` -> (runs, inputs): the leading run folders (they hold a config.yaml), then the inputs."""
    count = next((i for i, a in enumerate(arguments) if not (Path(a) / "config.yaml").is_file()), len(arguments))
    if count == 0:
        raise DlxError(f"{arguments[0] if arguments else 'RUN'}: not a dlx run folder (no config.yaml); give the run "
                       f"first, then the inputs")
    if count == len(arguments):
        raise DlxError("no inputs to predict: give image files, folders, globs, CSV tables or .npz/.pt arrays after "
                       "the run")
    return arguments[:count], arguments[count:]


