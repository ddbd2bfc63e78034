"""Metrics by name, computed with torchmetrics (which also reduces them across processes).

Each entry builds a metric for a data spec; `task` says which kind of data it can measure. torchmetrics is
imported by the builders, not here: importing it costs more than importing torch (it loads scipy, matplotlib and
torchvision), and listing the metrics or reading which are better when higher needs none of it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dlx.data.settings import CLASSIFICATION, LANGUAGE, RECONSTRUCTION, REGRESSION, SEQ2SEQ
from dlx.registry import metrics

if TYPE_CHECKING:
    from torchmetrics import Metric

    from dlx.data.base import DataSpec

DEFAULTS = {CLASSIFICATION: ["accuracy"], REGRESSION: ["mse", "mae"], RECONSTRUCTION: ["mse", "mae"],
            LANGUAGE: ["perplexity", "bpc"], SEQ2SEQ: ["sequence_accuracy", "token_accuracy"]}


# what eval.judge logs about a generative model's samples (dlx/judge.py), with whether higher is better: not registered
# metrics, which measure a model's outputs against targets, but a judge's verdict on samples
JUDGED = {"judge_confidence": True, "judge_confident": True, "judge_coverage": True, "frechet": False}


def higher_is_better(key: str) -> bool:
    """Whether larger values of a logged key ('val/accuracy', 'test/mse', 'train/epoch_loss') are better: the
    registered metric's direction (torchmetrics' higher_is_better), a judge's; losses and anything else are minimised."""
    name = key.rsplit("/", 1)[-1]
    if name in JUDGED:
        return JUDGED[name]
    return name in metrics and metrics.get(name).meta["higher_is_better"]


def logged_keys(groups: tuple[str, ...], terms: tuple[str, ...], metric_names: list[str],
                trained: tuple[str, ...] = (), judged: bool = False) -> list[str]:
    """Every key a run logs per epoch: the training loss of each parameter group and the `trained` terms it is made
    of, then validation's terms and metrics, and the judge's verdict when eval.judge is set."""
    train = ["train/epoch_loss"] if len(groups) == 1 else [f"train/{g}_epoch_loss" for g in groups]
    train += [f"train/epoch_{t}" for t in trained]
    validation = [*terms, *metric_names, *(JUDGED if judged else ())]
    return [*train, *(f"val/{name}" for name in validation)]


# validate_args=False: the checks cost a device sync per batch, and the loop's own tensors are well formed


@metrics.register("accuracy", "fraction of examples whose largest logit is the true class",
                  task=CLASSIFICATION, higher_is_better=True)
def accuracy(spec: DataSpec) -> Metric:
    from torchmetrics.classification import MulticlassAccuracy

    return MulticlassAccuracy(spec.num_classes, average="micro", validate_args=False)


# with five classes or fewer the true class is always among the top five
@metrics.register("top5", "top-5 accuracy: the true class is among the five largest logits (more than 5 classes)",
                  task=CLASSIFICATION, higher_is_better=True, min_classes=6)
def top5(spec: DataSpec) -> Metric:
    from torchmetrics.classification import MulticlassAccuracy

    return MulticlassAccuracy(spec.num_classes, top_k=5, average="micro", validate_args=False)


@metrics.register("precision", "precision, averaged over classes (macro)", task=CLASSIFICATION, higher_is_better=True)
def precision(spec: DataSpec) -> Metric:
    from torchmetrics.classification import MulticlassPrecision

    return MulticlassPrecision(spec.num_classes, average="macro", validate_args=False)


@metrics.register("recall", "recall, averaged over classes (macro)", task=CLASSIFICATION, higher_is_better=True)
def recall(spec: DataSpec) -> Metric:
    from torchmetrics.classification import MulticlassRecall

    return MulticlassRecall(spec.num_classes, average="macro", validate_args=False)


@metrics.register("f1", "F1 score, averaged over classes (macro)", task=CLASSIFICATION, higher_is_better=True)
def f1(spec: DataSpec) -> Metric:
    from torchmetrics.classification import MulticlassF1Score

    return MulticlassF1Score(spec.num_classes, average="macro", validate_args=False)


def _outputs(spec: DataSpec) -> int:
    """Target columns measured apart; a reconstruction measures all its values as one output."""
    return spec.out_features if spec.task == REGRESSION else 1


@metrics.register("mse", "mean squared error", task=REGRESSION, higher_is_better=False)
def mse(spec: DataSpec) -> Metric:
    from torchmetrics.regression import MeanSquaredError

    return MeanSquaredError(num_outputs=_outputs(spec))


@metrics.register("rmse", "root mean squared error", task=REGRESSION, higher_is_better=False)
def rmse(spec: DataSpec) -> Metric:
    from torchmetrics.regression import MeanSquaredError

    return MeanSquaredError(squared=False, num_outputs=_outputs(spec))


@metrics.register("mae", "mean absolute error", task=REGRESSION, higher_is_better=False)
def mae(spec: DataSpec) -> Metric:
    from torchmetrics.regression import MeanAbsoluteError

    return MeanAbsoluteError(num_outputs=_outputs(spec))


@metrics.register("r2", "coefficient of determination", task=REGRESSION, higher_is_better=True)
def r2(spec: DataSpec) -> Metric:
    from torchmetrics.regression import R2Score

    return R2Score(multioutput="uniform_average")


@metrics.register("perplexity", "exp of the mean negative log-likelihood per token",
                  task=LANGUAGE, higher_is_better=False)
def perplexity(spec: DataSpec) -> Metric:
    from torchmetrics.text import Perplexity

    return Perplexity()


@metrics.register("bpc", "bits per character: the mean negative log-likelihood per token in bits",
                  task=LANGUAGE, higher_is_better=False)
def bpc(spec: DataSpec) -> Metric:
    from dlx.bits import BitsPerCharacter

    return BitsPerCharacter()



# retrieval: measured on an embedding model's outputs (objectives triplet and siamese) within the split, every example a
# query against the split's other examples (dlx/retrieval.py); never on a classifier's logits
def _retrieval(name: str, description: str, measure: str, **settings: int) -> None:
    @metrics.register(name, f"retrieval: {description}", task=CLASSIFICATION, higher_is_better=True, embeddings=True)
    def build(spec: DataSpec) -> Metric:
        from dlx.retrieval import Retrieval

        return Retrieval(measure, **settings)


_retrieval("recall_at_1", "the nearest other example of the split is of the query's class", "recall_at_k", k=1)
_retrieval("recall_at_5", "one of the 5 nearest other examples of the split is of the query's class", "recall_at_k", k=5)
_retrieval("knn_accuracy", "the 5 nearest other examples of the split vote for the query's class", "knn_accuracy", k=5)
_retrieval("map", "mean average precision of each example's ranking of the split's others", "mean_average_precision")
EMBEDDING_DEFAULTS = ["recall_at_1", "recall_at_5", "knn_accuracy", "map"]
