"""A trained classifier judges a generative model's samples (eval.judge: runs/<classifier>), without downloads.

From a fixed batch of noise (the same at every evaluation, so the numbers compare over training) the model draws
`eval.judge_samples` samples, and the judge, a run trained with the supervised objective on data of the same shape,
labels them:

- judge_confidence: the mean over samples of the judge's largest class probability;
- judge_confident: the share of samples labelled with probability >= 0.9 (clearly some class);
- judge_coverage: how many classes appear among those confident labels (a collapsed generator draws few);
- frechet: the Frechet distance between Gaussians fitted to the judge's penultimate features (the input of its
  last linear layer) of real images and of the samples, ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)),
  as FID computes it on Inception's features (torchmetrics' FrechetInceptionDistance, given these features).

Samples and real images reach the judge as its own inputs did: the generative run's standardisation undone, the
judge's applied. Works for any model with the generative protocol, sample_noise(n, device, generator) and decode(z).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from dlx.data.base import CLASSIFICATION, DataSpec, Standardizer
from dlx.errors import DlxError
from dlx.models.modes import evaluating

if TYPE_CHECKING:
    from dlx.run.trained import Trained

CONFIDENT = 0.9  # a label the judge gives with at least this probability counts as confident
NOISE_SEED = 0  # the judged samples' noise: one fixed batch for every evaluation of every run


def report(trained: Trained, split: str, judge: str | Path | None) -> dict[str, Any]:
    """`dlx evaluate` of a generative run: the judge's verdict on its samples against `split`'s real images, by the
    run's own eval.judge unless `judge` names another classifier."""
    if not is_generative(trained.model):
        raise DlxError(f"--judge: {trained.run.path} draws no samples (its model has no sample_noise and decode); a "
                       f"judge labels a generative model's samples (mlp_gan, dcgan, mlp_vae)")
    judge = judge or trained.config.eval.judge
    if judge is None:
        raise DlxError(f"{trained.run.path} was trained without eval.judge; judge its samples with "
                       f"--judge runs/<a classifier of the same data>")
    samples = trained.config.eval.judge_samples
    verdict = Judge(judge, trained.spec, trained.standardizer, trained.device, samples,
                    trained.config.train.eval_batch_size)(trained.model, lambda: trained.data[split][0], split)
    return {"run": str(trained.run.path), "ensemble": None, "split": split, "examples": samples,
            "task": "generated", "judge": str(judge), "epoch": trained.checkpoint.epoch, "threshold": None,
            "metrics": verdict}


def is_generative(model: nn.Module) -> bool:
    """Whether a model keeps the generative protocol: sample_noise(n, device, generator) and decode(z)."""
    return callable(getattr(model, "sample_noise", None)) and callable(getattr(model, "decode", None))


class Judge:
    def __init__(self, path: str | Path, spec: DataSpec, standardizer: Standardizer | None, device: torch.device,
                 samples: int = 1000, batch_size: int = 256):
        self.path, self.samples, self.batch_size = Path(path), samples, batch_size
        self.model, self.judge_standardizer = _open(self.path, spec, device)
        self.standardizer = standardizer
        self.layer = _last_linear(self.model, self.path)
        self.real: dict[str, object] = {}  # per split: a Frechet metric holding that split's real features

    def __call__(self, generator: nn.Module, real: Callable[[], Tensor], split: str) -> dict[str, float]:
        """The judge's numbers for the generative `generator`'s samples, with the Frechet distance to `real()` (the
        generative run's standardised images of `split`: asked for, a float copy of the split, only the first time
        the split is judged; its features are kept)."""
        probabilities, fake_features = self._judged(self._draw(generator))
        frechet = self._frechet(real, split)
        frechet.reset()  # the real features stay (reset_real_features=False)
        frechet.update(fake_features, real=False)
        confidence, label = probabilities.max(dim=1)
        confident = confidence >= CONFIDENT
        return {"judge_confidence": confidence.mean().item(), "judge_confident": confident.float().mean().item(),
                "judge_coverage": float(label[confident].unique().numel()), "frechet": frechet.compute().item()}

    @torch.no_grad()
    def _draw(self, generator: nn.Module) -> Tensor:
        device = next(generator.parameters()).device
        noise = generator.sample_noise(self.samples, device, torch.Generator(device=device).manual_seed(NOISE_SEED))
        with evaluating(generator):
            return torch.cat([generator.decode(z) for z in noise.split(self.batch_size)])

    @torch.no_grad()
    def _judged(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The judge's class probabilities (N, K) and penultimate features (N, D) for samples in the generative run's
        scale, the features on the CPU in double precision for the Frechet distance."""
        if self.standardizer is not None:
            x = self.standardizer.invert(x)
        if self.judge_standardizer is not None:
            x = self.judge_standardizer(x)
        probabilities, features = [], []
        with _inputs_of(self.layer) as seen:
            for batch in x.split(self.batch_size):
                probabilities.append(self.model(batch).softmax(dim=1))
                features.append(seen[-1].flatten(1).cpu().double())
        return torch.cat(probabilities), torch.cat(features)

    def _frechet(self, real: Callable[[], Tensor], split: str):
        if split not in self.real:
            from torchmetrics.image.fid import FrechetInceptionDistance  # only where a judge is used

            _, features = self._judged(real())
            # the features come computed: the metric's extractor passes them on; each process holds them all, so
            # nothing is summed across processes
            metric = FrechetInceptionDistance(_Computed(features.shape[1]), reset_real_features=False,
                                              sync_on_compute=False)
            metric.update(features, real=True)
            self.real[split] = metric
        return self.real[split]


class _Computed(nn.Identity):
    """Features computed beforehand, as torchmetrics' Frechet distance takes a custom extractor: width num_features."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features


@contextmanager
def _inputs_of(layer: nn.Module) -> Iterator[list[Tensor]]:
    """The inputs `layer` receives while the block runs, in order; the hook is always removed."""
    seen: list[Tensor] = []
    handle = layer.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    try:
        yield seen
    finally:
        handle.remove()


def _open(path: Path, spec: DataSpec, device: torch.device) -> tuple[nn.Module, Standardizer | None]:
    """The judge's model with its best weights, in eval mode on `device`, and its standardisation; one line saying
    why when it cannot judge this data. Opening it leaves the random numbers and the thread count as they were."""
    from dlx.run.trained import open_trained

    if not path.is_dir():
        raise DlxError(f"eval.judge: {path}: no such run folder; train a classifier first, e.g. "
                       f"`dlx train experiments/digits_cnn.yaml`")
    threads = torch.get_num_threads()
    try:
        with torch.random.fork_rng(devices=[]):  # building the judge's model draws weights: training's draws stay
            trained = open_trained(path, device=str(device))
    except DlxError as e:
        raise DlxError(f"eval.judge: {e}") from None
    finally:
        torch.set_num_threads(threads)  # the judge's recorded thread count is not this run's
    if trained.config.objective.name != "supervised" or trained.spec.task != CLASSIFICATION:
        kind = trained.spec.task if trained.config.objective.name == "supervised" else trained.config.objective.name
        raise DlxError(f"eval.judge: {path} is not a classifier (a {kind} run); a judge is a run trained with the "
                       f"supervised objective on labelled data, e.g. `dlx train experiments/digits_cnn.yaml`")
    if trained.spec.in_shape != spec.in_shape:
        raise DlxError(f"eval.judge: {path} was trained on samples of shape {trained.spec.in_shape}, and this run's "
                       f"are {spec.in_shape}; judge with a classifier of the same data")
    return trained.model.requires_grad_(False), trained.standardizer


def _last_linear(model: nn.Module, path: Path) -> nn.Module:
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise DlxError(f"eval.judge: {path}'s model has no linear output layer whose input could serve as its "
                       f"features; judge with a classifier ending in one (cnn, mlp, resnet, ...)")
    return layers[-1]
