"""What word vectors learned (`dlx evaluate` on a skipgram or cbow run): nearest neighbours by cosine, analogies,
a 2-D map of the most frequent words, and the vectors in TensorBoard's projector with the words as labels."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from torch import Tensor

from dlx import build, tables
from dlx.data.text import vocab_of
from dlx.data.words import WordVocab
from dlx.errors import DlxError, closest
from dlx.run.trained import Trained

OBJECTIVES = ("skipgram", "cbow")  # the objectives whose runs are word vectors
NEIGHBOURS = 10
MAP_METHODS = ("pca", "tsne")


@dataclass
class Probes:
    """What to show of the vectors, beside the objective's loss."""

    words: list[str]  # --probe: each one's nearest neighbours
    analogies: Path | None = None  # a file of `a b c d` lines: is d the word nearest to b - a + c?
    map_method: str | None = None  # pca | tsne (None: not asked for, pca): how the word map is flattened to 2-D
    map_words: int = 300  # the map shows this many of the most frequent words


def check(probes: Probes) -> None:
    if probes.map_method not in (None, *MAP_METHODS):
        raise DlxError(f"--map '{probes.map_method}': choose pca or tsne")
    if probes.analogies is not None and not probes.analogies.is_file():
        raise DlxError(f"--analogies {probes.analogies}: no such file")


def unit_vectors(trained: Trained) -> Tensor:
    """(V, d) the run's word vectors (E), each scaled to length 1 so that a dot product is a cosine."""
    return F.normalize(trained.model.token_embedding.weight.detach().float().cpu(), dim=1)


def nearest(vectors: Tensor, query: Tensor, exclude: list[int], k: int) -> list[tuple[int, float]]:
    """The k words whose vectors have the largest cosine with `query`, never those in `exclude`."""
    cosines = vectors @ F.normalize(query, dim=0)
    cosines[exclude] = -float("inf")
    top = cosines.topk(min(k, len(vectors) - len(exclude)))
    return list(zip(top.indices.tolist(), top.values.tolist()))


def neighbours(vectors: Tensor, vocab: WordVocab, word: str) -> dict[str, Any]:
    """A probe word's nearest neighbours, or, for a word outside the vocabulary, the known words closest in spelling."""
    index = vocab.id(word)
    if index is None or index == 0:
        return {"word": word, "unknown": True, "did_you_mean": closest(word.lower(), vocab.tokens[1:])}
    found = nearest(vectors, vectors[index], [0, index], NEIGHBOURS)
    return {"word": word, "neighbours": [{"word": vocab.tokens[i], "cosine": c} for i, c in found]}


def analogies(vectors: Tensor, vocab: WordVocab, path: Path) -> dict[str, Any]:
    """Accuracy on `a b c d` lines (a is to b as c is to d): the answer is the word nearest to b - a + c, the three
    question words left out (Mikolov et al. 2013). Lines with a word outside the vocabulary are skipped and counted;
    blank lines and lines starting with ':' or '#' (section headers, comments) are no questions."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DlxError(f"--analogies {path}: cannot read it as UTF-8 text ({e})") from None
    questions, correct, skipped = 0, 0, 0
    for number, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0].startswith((":", "#")):
            continue
        if len(words) != 4:
            raise DlxError(f"--analogies {path}, line {number}: {len(words)} words; each line is 'a b c d'")
        ids = [vocab.id(w) for w in words]
        if None in ids or 0 in ids:
            skipped += 1
            continue
        a, b, c, d = ids
        questions += 1
        answer = nearest(vectors, vectors[b] - vectors[a] + vectors[c], [0, a, b, c], 1)[0][0]
        correct += answer == d
    return {"file": str(path), "questions": questions, "correct": correct, "skipped": skipped,
            "accuracy": correct / questions if questions else None}


def flatten(vectors: Tensor, method: str, seed: int) -> Tensor:
    """(N, d) -> (N, 2): the plane of the two largest principal components, or a t-SNE embedding."""
    centred = vectors - vectors.mean(0)
    if method == "pca":
        return centred @ torch.linalg.svd(centred, full_matrices=False).Vh[:2].T
    from sklearn.manifold import TSNE  # only where asked for: scikit-learn's import is slow

    perplexity = min(30.0, (len(vectors) - 1) / 3)
    return torch.from_numpy(TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(centred.numpy()))


def report(trained: Trained, probes: Probes, split: str, folder: Path, title: str) -> dict[str, Any]:
    """The objective's loss on the split, the probes' neighbours, the analogies' accuracy, the map (written to
    `folder`) and the projector (the run's TensorBoard)."""
    from dlx import plots  # matplotlib only once a figure is drawn

    vocab = vocab_of(trained.spec)
    if not isinstance(vocab, WordVocab):
        raise DlxError(f"{trained.run.path} learned vectors of characters; --probe takes words (data.tokenizer: words)")
    vectors = unit_vectors(trained)
    result: dict[str, Any] = {"metrics": loss(trained, split), "word_vectors": True,
                              "probes": [neighbours(vectors, vocab, w) for w in probes.words]}
    if probes.analogies is not None:
        result["analogies"] = analogies(vectors, vocab, probes.analogies)
        if result["analogies"]["accuracy"] is not None:
            result["metrics"]["analogy_accuracy"] = result["analogies"]["accuracy"]
    shown = torch.arange(1, min(len(vocab), probes.map_words + 1))  # ids 1, 2, ...: the most frequent words
    method = probes.map_method or MAP_METHODS[0]
    points = flatten(vectors[shown], method, trained.config.seed)
    figure = plots.word_map_figure(points.numpy(), [vocab.tokens[i] for i in shown],
                                   f"{title}: the {len(shown)} most frequent words ({method.upper()})")
    result["figures"] = [plots.save(figure, folder / f"word-map-{method}.png", dpi=120)]
    trained.run.writer.add_embedding(trained.model.token_embedding.weight.detach().cpu(), metadata=list(vocab.tokens),
                                     global_step=trained.checkpoint.step, tag="word_vectors")
    return result


def loss(trained: Trained, split: str) -> dict[str, float]:
    """The objective's own loss on the split's word pairs, as training logs it."""
    objective = build.objective(trained.config, trained.spec, trained.model, build.loss(trained.config, trained.spec))
    objective.prepare(trained.data)
    return objective.measure(trained.model, trained.data.batches(split, trained.config.train.eval_batch_size), None)


def print_report(console: Console, report: dict[str, Any]) -> None:
    for probe in report["probes"]:
        if probe.get("unknown"):
            hint = f" (did you mean {' or '.join(repr(w) for w in probe['did_you_mean'])}?)" if probe["did_you_mean"] else ""
            console.print(f"{probe['word']!r} is not in the vocabulary{hint}", highlight=False, soft_wrap=True)
        else:
            console.print(f"[bold]{probe['word']}[/]: " + ", ".join(f"{n['word']} {n['cosine']:.2f}"
                                                                    for n in probe["neighbours"]),
                          highlight=False, soft_wrap=True)
    if "analogies" in report:
        a = report["analogies"]
        accuracy = "-" if a["accuracy"] is None else f"{a['accuracy']:.3f}"
        console.print(f"analogies: {a['correct']}/{a['questions']} right (accuracy {accuracy}); {a['skipped']} "
                      f"skipped for a word outside the vocabulary", highlight=False, soft_wrap=True)
    console.print(tables.table(["metric", "value"], report["metrics"].items()))
