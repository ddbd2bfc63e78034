"""Word vectors: the word tokenizer, skip-gram and CBOW examples, both objectives with the full softmax and negative
sampling learning planted structure, `dlx evaluate --probe`, analogies, and pretrained vectors in a later model."""
from __future__ import annotations

import io
import json

import pytest
import torch
import torch.nn.functional as F
from rich.console import Console
from typer.testing import CliRunner

from dlx import embeddings
from dlx.cli import app
from dlx.config import load
from dlx.data.word_pairs import CBOW, SKIPGRAM, PairEpochs, examples, keep_probabilities
from dlx.data.text import TextCorpus, Windows, text_splits, vocab_of
from dlx.data.words import UNKNOWN, WordVocab, tokenize
from dlx.errors import DlxError
from dlx.run import pretrained
from dlx.run import checkpoint
from dlx.run.trained import open_trained
from dlx.train import loop
from tests.words import GROUPS, experiment

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")
QUIET = {"quiet": True, "console": Console(file=io.StringIO())}


# --- the word tokenizer ----------------------------------------------------------------------------------------------
def test_words_are_lower_cased_and_punctuation_marks_are_tokens_of_their_own():
    assert tokenize("The King's men, O'er the hill!\n--Exeunt.") == [
        "the", "king's", "men", ",", "o'er", "the", "hill", "!", "-", "-", "exeunt", "."]


def test_the_vocabulary_keeps_frequent_words_most_frequent_first_and_the_rest_is_unk():
    words = tokenize("b a b c b a d")
    assert WordVocab.of(words, min_count=2, max_vocab=10).tokens == (UNKNOWN, "b", "a")
    assert WordVocab.of(words, min_count=1, max_vocab=3).tokens == (UNKNOWN, "b", "a")  # <unk> counts in max_vocab
    vocab = WordVocab.of(words, min_count=1, max_vocab=10)
    assert vocab.tokens == (UNKNOWN, "b", "a", "c", "d")  # ties alphabetically
    assert vocab.encode("B, zebra a").tolist() == [1, 0, 0, 2]  # ',' and 'zebra' unknown
    assert vocab.decode(vocab.encode("b a")) == " b a"


def test_a_word_stream_decodes_with_spaces_between_words_and_none_before_marks():
    vocab = WordVocab((UNKNOWN, "to", "be", ",", "or", "not", "."))
    assert vocab.decode(vocab.encode("To be, or not to be.")) == " to be, or not to be."


def corpus(text: str, **settings) -> TextCorpus:
    return TextCorpus(text, Windows(**settings), "test text")


def test_word_text_splits_record_the_tokenizer_and_the_vocabulary_reloads_from_the_spec():
    text = "the cat sat on the mat . " * 40
    splits = text_splits(corpus(text, tokenizer="words", min_count=1, block_size=8), (0.8, 0.1, 0.1), CPU)
    assert splits.spec.tokenizer == "words" and splits.spec.class_names == (UNKNOWN, "the", ".", "cat", "mat", "on", "sat")
    assert sum(len(s) for s in splits.streams.values()) == 7 * 40  # words, not characters
    assert isinstance(vocab_of(splits.spec), WordVocab)
    assert json.loads(splits.vocab.to_json())["tokens"] == list(splits.spec.class_names)


@pytest.mark.parametrize("settings, problem", [
    ({"min_count": 2}, "data.min_count=2 applies to words"),
    ({"tokenizer": "words", "min_count": 50}, "no word occurs data.min_count=50 times"),
])
def test_word_settings_that_cannot_apply_are_one_line_errors(settings, problem):
    with pytest.raises(DlxError, match=problem):
        text_splits(corpus("a b c " * 10, block_size=4, **settings), (0.8, 0.1, 0.1), CPU)


# --- examples ------------------------------------------------------------------------------------------------------------
def test_skipgram_pairs_each_word_with_the_words_within_its_drawn_window():
    stream = torch.tensor([10, 11, 12, 13])
    x, y = examples(stream, SKIPGRAM, window=2, reach=torch.tensor([1, 2, 1, 1]))
    pairs = sorted(zip(x.flatten().tolist(), y.tolist()))
    assert pairs == [(10, 11), (11, 10), (11, 12), (11, 13), (12, 11), (12, 13), (13, 12)]


def test_cbow_takes_the_window_on_either_side_as_input_and_the_centre_as_target():
    x, y = examples(torch.arange(6), CBOW, window=2)
    assert x.tolist() == [[0, 1, 3, 4], [1, 2, 4, 5]] and y.tolist() == [2, 3]


def test_subsampling_keeps_a_word_with_mikolovs_probability():
    keep = keep_probabilities(torch.tensor([900, 90, 10, 0]), threshold=0.01)  # frequencies 0.9, 0.09, 0.01, 0
    assert torch.allclose(keep, torch.tensor([(0.01 / 0.9) ** 0.5, (0.01 / 0.09) ** 0.5, 1.0, 1.0]))
    assert keep_probabilities(torch.tensor([5, 5]), threshold=0).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("kind", [SKIPGRAM, CBOW])
def test_an_epoch_of_pairs_replays_from_its_generator_and_a_resumed_epoch_skips_what_was_done(kind):
    stream = torch.randint(0, 20, (500,), generator=torch.Generator().manual_seed(0))
    keep = keep_probabilities(torch.bincount(stream, minlength=20), 0.05)
    epochs = PairEpochs(stream, keep, kind, window=3, batch_size=64, device=CPU)
    whole = list(epochs.epoch(torch.Generator().manual_seed(1)))
    again = list(epochs.epoch(torch.Generator().manual_seed(1), start=3))
    assert len(whole) == len(epochs) and len(again) == len(epochs) - 3
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(whole[3:], again))
    other = list(epochs.epoch(torch.Generator().manual_seed(2)))
    assert not torch.equal(whole[0][1], other[0][1])  # another epoch draws other pairs


# --- learning planted structure ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Each objective with each output layer trained on the planted corpus: {(objective, negatives): run path}."""
    root = tmp_path_factory.mktemp("planted")
    return {(objective, k): loop.start(load(experiment(root, objective, k), [f"name={objective}-{k}"]), root / "runs",
                                       **QUIET)[0].path
            for objective in ("skipgram", "cbow") for k in (0, 5)}


@pytest.mark.parametrize("objective", ["skipgram", "cbow"])
@pytest.mark.parametrize("negatives", [0, 5], ids=["full-softmax", "negative-sampling"])
def test_words_used_in_identical_contexts_are_each_others_nearest_neighbours(planted, objective, negatives):
    trained = open_trained(planted[objective, negatives])
    vectors, vocab = embeddings.unit_vectors(trained), vocab_of(trained.spec)
    for a, b in GROUPS.items():
        for word, partner in ((a, b), (b, a)):
            found = embeddings.neighbours(vectors, vocab, word)["neighbours"]
            assert found[0]["word"] == partner, (word, found[:3])
            assert found[0]["cosine"] > found[1]["cosine"] + 0.1  # clearly, not by a hair


def test_negative_sampling_scores_the_target_against_k_noise_words_and_the_full_softmax_scores_all(planted):
    trained = open_trained(planted["skipgram", 5])
    from dlx import build
    objective = build.objective(trained.config, trained.spec, trained.model, build.loss(trained.config, trained.spec))
    x, y = trained.data["val"]
    u = trained.model.embedding(x).mean(1)
    torch.manual_seed(0)
    noise = torch.multinomial(objective.noise, len(y) * 5, replacement=True).view(len(y), 5)
    c = trained.model.context.weight
    expected = -(F.logsigmoid((u * c[y]).sum(1)) + (F.logsigmoid(-(u[:, None] * c[noise]).sum(2))
                                                   * (noise != y[:, None])).sum(1)).mean()
    torch.manual_seed(0)
    assert torch.allclose(objective.loss("model", {"model": trained.model}, x, y), expected)
    objective.negatives = 0
    assert torch.allclose(objective.loss("model", {"model": trained.model}, x, y), F.cross_entropy(u @ c.T, y))


def test_negative_sampling_draws_words_by_their_count_to_the_power_three_quarters(planted):
    trained = open_trained(planted["skipgram", 5])
    from dlx import build
    objective = build.objective(trained.config, trained.spec, trained.model, build.loss(trained.config, trained.spec))
    objective.prepare(trained.data)
    counts = torch.bincount(trained.data.streams["train"], minlength=trained.spec.num_classes)
    assert torch.allclose(objective.noise, counts.double().pow(0.75).float())


# --- dlx evaluate ----------------------------------------------------------------------------------------------------------
def test_evaluate_prints_each_probes_neighbours_and_one_line_for_an_unknown_word(planted):
    run = planted["skipgram", 5]
    result = CliRunner().invoke(app, ["evaluate", str(run), "--probe", "cat", "--probe", "kingg"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("cat: dog ") for line in lines)
    assert "'kingg' is not in the vocabulary (did you mean 'king'?)" in lines
    assert (run / "word-map-pca.png").is_file()
    assert list((run).glob("**/projector_config.pbtxt"))  # TensorBoard's projector, the words as its labels
    assert json.loads((run / "evaluation.json").read_text())["test/best"]["probes"][0]["neighbours"][0]["word"] == "dog"


def test_the_map_can_be_a_tsne(planted, tmp_path):
    result = CliRunner().invoke(app, ["evaluate", str(planted["cbow", 5]), "--map", "tsne", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "word-map-tsne.png").is_file()


def test_analogy_accuracy_counts_b_minus_a_plus_c_nearest_to_d(tmp_path):
    vocab = WordVocab((UNKNOWN, "man", "woman", "king", "queen", "apple"))
    vectors = F.normalize(torch.tensor([[0, 0, 0.1], [1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1], [-1, -1, 0.5]]), dim=1)
    path = tmp_path / "analogies.txt"
    path.write_text(": capital-common\nman woman king queen\nman woman king apple\nman woman king zebra\n\n")
    assert embeddings.analogies(vectors, vocab, path) == {"file": str(path), "questions": 2, "correct": 1,
                                                         "skipped": 1, "accuracy": 0.5}
    path.write_text("man woman king\n")
    with pytest.raises(DlxError, match="line 1: 3 words; each line is 'a b c d'"):
        embeddings.analogies(vectors, vocab, path)


def test_evaluate_reports_analogies_from_a_file(planted, tmp_path):
    path = tmp_path / "analogies.txt"
    path.write_text("cat dog apple pear\n")
    result = CliRunner().invoke(app, ["evaluate", str(planted["skipgram", 0]), "--analogies", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["analogies"]["questions"] == 1


@pytest.mark.parametrize("args, problem", [
    (["--map", "umap"], "--map 'umap': choose pca or tsne"),
    (["--analogies", "missing.txt"], "--analogies missing.txt: no such file"),
])
def test_evaluate_refuses_bad_word_vector_options_in_one_line(planted, args, problem):
    result = CliRunner().invoke(app, ["evaluate", str(planted["skipgram", 5]), *args])
    assert result.exit_code == 2 and problem in result.output, result.output


def test_probe_on_a_run_that_is_not_word_vectors_is_one_line(tmp_path):
    run, _ = loop.start(language_model(tmp_path, None), tmp_path / "runs", **QUIET)
    result = CliRunner().invoke(app, ["evaluate", str(run.path), "--probe", "king"])
    assert result.exit_code == 2 and "--probe, --analogies and --map take a run of word vectors" in result.output


# --- pretrained vectors in a later model ---------------------------------------------------------------------------------
LSTM = ["model.name=char_lstm", "model.hidden=16", "model.layers=1", "model.embedding=16"]
GPT = ["model.name=gpt", "model.width=16", "model.heads=2", "model.layers=1"]


def language_model(root, source, *more, model=tuple(LSTM)):
    """A word-level language model on the planted corpus, its embedding from the run at `source` (None: none)."""
    return load(experiment(root), ["name=lm", "objective.name=supervised", *model,
                                   f"model.embedding_from={source or 'null'}",
                                   "data.block_size=8", "data.steps_per_epoch=5", "optimizer.lr=0.01",
                                   "train.epochs=1", *more])


@pytest.mark.parametrize("model, key", [(LSTM, "embed.weight"), (GPT, "tok.weight")], ids=["char_lstm", "gpt"])
@pytest.mark.parametrize("freeze", [True, False])
def test_a_language_model_starts_from_the_vectors_of_a_word2vec_run(planted, tmp_path, freeze, model, key):
    source = planted["skipgram", 5]
    vectors = open_trained(source).model.embedding.weight.detach()
    trainer = loop.Trainer(language_model(tmp_path, source, f"model.embedding_freeze={freeze}", model=model), **QUIET)
    assert torch.equal(trainer.model.token_embedding.weight, vectors)
    run, _ = loop.start(trainer.config, tmp_path / "runs", **QUIET)
    trained = checkpoint.load(run.checkpoint("last")).model[key]
    assert torch.equal(trained, vectors) == freeze  # frozen: as they came; else fine-tuned


@pytest.mark.parametrize("more, problem", [
    (["model.embedding=8"], "'s vectors have width 16, this model's token embedding 8"),
    (["data.min_count=700"], "has a vocabulary of"),
])
def test_pretrained_vectors_that_do_not_fit_are_one_line_errors(planted, tmp_path, more, problem):
    with pytest.raises(DlxError, match=problem):
        loop.Trainer(language_model(tmp_path, planted["skipgram", 5], *more), **QUIET)


def test_a_model_without_a_token_embedding_is_named():
    with pytest.raises(DlxError, match="model.embedding_from: model 'mlp' has no token embedding"):
        pretrained.token_embedding(torch.nn.Sequential(torch.nn.Linear(2, 2)), "mlp", "model")


def test_a_missing_source_run_or_a_freeze_without_one_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["train", str(experiment(tmp_path)), "--set", "objective.name=supervised",
                                      "--set", "model.name=char_lstm", "--set", "model.embedding_from=runs/nothing-here",
                                      "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "model.embedding_from: runs/nothing-here: not a dlx run folder" in result.output
    assert not (tmp_path / "runs").exists()  # nothing made
    result = CliRunner().invoke(app, ["train", str(experiment(tmp_path)), "--set", "model.embedding_freeze=true",
                                      "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "model.embedding_freeze: there is no pretrained embedding" in result.output


def test_evaluating_on_a_text_of_another_vocabulary_is_one_line(planted, tmp_path):
    (tmp_path / "other.txt").write_text("a quite different text , with other words . " * 30)
    result = CliRunner().invoke(app, ["evaluate", str(planted["cbow", 0]), "--set", f"data.path={tmp_path / 'other.txt'}"])
    assert result.exit_code == 2 and "this text's vocabulary (10 words) is not the one" in result.output, result.output


def test_subsampling_that_leaves_no_example_is_one_line():
    stream = torch.zeros(50, dtype=torch.long)  # one word, always dropped
    epochs = PairEpochs(stream, torch.zeros(1), CBOW, window=2, batch_size=8, device=CPU)
    with pytest.raises(DlxError, match="objective.subsample left too few words"):
        next(epochs.epoch(torch.Generator().manual_seed(0)))
