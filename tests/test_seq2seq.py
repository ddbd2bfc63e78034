"""Encoder-decoders: the pair datasets, attention as the notes write it, teacher forcing and its decay, the metrics,
greedy and beam decoding, `dlx generate --input` with its heat map and `dlx evaluate` by source length."""
from __future__ import annotations

import datetime
import json
import math

import pytest
import torch
from typer.testing import CliRunner

from dlx import registry
from dlx.cli import app
from dlx.config import validate
from dlx.data.base import SEQ2SEQ, DataSpec, make_splits
from dlx.data.sequence_pairs import BOS_ID, EOS_ID, PAD_ID, TokenVocab
from dlx.errors import DlxError
from dlx.models.encoder_decoder import DecoderState
from dlx.models.seq2seq_decode import beam_search, greedy
from dlx.registry import datasets, models, objectives
from dlx.sequence_metrics import exact_and_tokens

pytestmark = pytest.mark.usefixtures("one_thread")

PAIR_MODULES = {"dlx.data.pair_tasks", "dlx.data.parallel"}
GENERATED = [e.name for e in datasets.list() if e.obj.__module__ == "dlx.data.pair_tasks"]


def write_tsv(path, text: str):
    path.write_text(text, encoding="utf-8")
    return str(path)


def pair_settings(name: str, tmp_path) -> dict:
    if name == "parallel_text":  # the Anki export's three columns: the attribution is ignored
        return {"path": write_tsv(tmp_path / "pairs.tsv", "Go.\tVa !\tCC-BY 2.0 #1\nHi.\tSalut !\tCC-BY 2.0 #2\n\n"
                                                          "Run!\tCours !\tCC-BY 2.0 #3\n")}
    return {"n": 64}


# --- the datasets ------------------------------------------------------------------------------------------------
def pair_datasets() -> list[str]:
    return [e.name for e in datasets.list() if e.obj.__module__ in PAIR_MODULES]


def test_every_pair_dataset_is_here():
    assert set(pair_datasets()) == {"reverse", "sort_digits", "addition", "dates", "parallel_text"}


@pytest.mark.parametrize("name", pair_datasets())
def test_every_pair_dataset_holds_padded_ids_between_start_and_end_tokens(name, tmp_path):
    entry = datasets.get(name)
    data = entry.build(**entry.resolve(pair_settings(name, tmp_path), "data"))
    spec = data.spec()
    assert spec.task == SEQ2SEQ and spec.in_shape == tuple(data.x.shape[1:])
    assert data.x.dtype == data.y.dtype == torch.long and len(data.x) == len(data.y)
    assert (data.y[:, 0] == BOS_ID).all() and ((data.y == EOS_ID).sum(1) == 1).all()
    assert data.x.max() < len(spec.source_names) and data.y.max() < spec.num_classes == len(spec.class_names)
    for row in data.y:  # nothing but padding after </s>
        end = int((row == EOS_ID).nonzero())
        assert (row[end + 1:] == PAD_ID).all() and (row[1:end] > EOS_ID).all()
    splits = make_splits(data, (0.6, 0.2, 0.2), 0, True, torch.device("cpu"))
    assert sum(len(splits[s][0]) for s in ("train", "val", "test")) == len(data.x)
    assert splits["train"][0].dtype == torch.long and splits.standardizer is None  # ids are never standardised


def decoded(data) -> list[tuple[str, str]]:
    source, target = TokenVocab(data.source_names), TokenVocab(data.class_names)
    return [(source.decode(x.tolist()), target.decode(y[1:].tolist())) for x, y in zip(data.x, data.y)]


@pytest.mark.parametrize("name, right", [
    ("reverse", lambda s, t: t == s[::-1] and 5 <= len(s) <= 12 and s.isalpha()),
    ("sort_digits", lambda s, t: t == "".join(sorted(s)) and s.isdigit()),
    ("addition", lambda s, t: int(t) == sum(map(int, s.split("+")))),
    ("dates", lambda s, t: datetime.date.fromisoformat(t).year >= 1900),
])
def test_the_generated_tasks_pair_each_source_with_its_answer(name, right):
    pairs = decoded(datasets.get(name).build(n=200))
    assert all(right(s, t) for s, t in pairs), [p for p in pairs if not right(*p)][:3]


def test_dates_are_written_many_ways_for_one_iso_form():
    pairs = decoded(datasets.get("dates").build(n=400))
    assert len({s.count(" ") for s, _ in pairs}) >= 3 and any("/" in s for s, _ in pairs) and any(
        "." in s for s, _ in pairs)


@pytest.mark.parametrize("name", GENERATED)
def test_generated_pairs_are_fixed_by_their_seed(name):
    entry = datasets.get(name)
    a, b, c = entry.build(n=100, seed=1), entry.build(n=100, seed=1), entry.build(n=100, seed=2)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and not torch.equal(a.y, c.y)


@pytest.mark.parametrize("text, problem", [
    ("a\tb\nno tab here\n", "pairs.tsv, line 2: no TAB between a source and a target ('no tab here')"),
    ("a\tb\n\t\tx\n", "pairs.tsv, line 2: the source is empty"),
    ("a\tb\nc\t \n", "pairs.tsv, line 2: the target is empty"),
    ("\n\n", "pairs.tsv: no source<TAB>target lines"),
])
def test_damaged_parallel_text_is_one_line_naming_the_line(tmp_path, text, problem):
    with pytest.raises(DlxError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        datasets.get("parallel_text").build(path=write_tsv(tmp_path / "pairs.tsv", text))


def test_damaged_parallel_text_stops_dlx_train_with_exit_2_and_one_line(tmp_path):
    path = write_tsv(tmp_path / "pairs.tsv", "Go.\tVa !\nbroken line\n")
    result = CliRunner().invoke(app, ["train", "experiments/reverse_seq2seq_attention.yaml", "--set",
                                      "data={name: parallel_text, path: " + path + "}", "--runs-dir",
                                      str(tmp_path / "runs")])
    assert result.exit_code == 2 and "line 2: no TAB" in result.output and "Traceback" not in result.output
    assert result.output.count("error:") == 1 and not (tmp_path / "runs").exists()


def test_parallel_text_settings(tmp_path):
    path = write_tsv(tmp_path / "pairs.tsv", "Go.\tVa !\nHello there.\tBonjour.\nHi.\tSalut !\n")
    build = datasets.get("parallel_text").build
    assert [s for s, _ in decoded(build(path=path, max_length=7))] == ["Go.", "Hi."]
    assert decoded(build(path=path, swap=True, lowercase=True, max_pairs=1)) == [("va !", "go.")]


# --- the models --------------------------------------------------------------------------------------------------
SPEC = DataSpec((7,), SEQ2SEQ, num_classes=8, class_names=(*"\0\1\2", *"abcde"), source_names=(*"\0\1\2", *"abcd"))
SMALL = {"embedding": 8, "hidden": 16}


def model(name: str = "seq2seq_rnn", **settings):
    torch.manual_seed(0)
    entry = models.get(name)
    small = SMALL if name == "seq2seq_rnn" else {"width": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1}
    return entry.build(SPEC, **entry.resolve({**small, **settings}, "model")).eval()


SOURCES = torch.tensor([[3, 4, 5, 6, 3, 4, 5], [6, 5, 4, PAD_ID, PAD_ID, PAD_ID, PAD_ID]])
VARIANTS = [("seq2seq_rnn", {"attention": "bahdanau"}), ("seq2seq_rnn", {"attention": "luong", "cell": "lstm"}),
            ("seq2seq_rnn", {"attention": "bahdanau", "bidirectional": False}), ("seq2seq_transformer", {})]


@pytest.mark.parametrize("name, settings", VARIANTS, ids=lambda v: str(v))
def test_attention_weights_sum_to_one_over_the_source_and_skip_its_padding(name, settings):
    net = model(name, **settings)
    state = net.encode(SOURCES)
    token = torch.full((2,), BOS_ID)
    for _ in range(3):
        logits, weights = net.step(state, token)
        assert logits.shape == (2, 8) and weights.shape == (2, 7)
        assert torch.allclose(weights.sum(1), torch.ones(2)) and (weights[1, 3:] == 0).all()
        token = logits.argmax(1)


def test_bahdanau_attention_is_the_notes_formula():
    """e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j), alpha = softmax(e), c = sum_j alpha_ij h_j; s_0 = tanh(W_s h_1)."""
    net = model(attention="bahdanau")
    state = net.encode(SOURCES[:1])
    s0, h = state.s, state.memory[0]  # (1, H), (S, 2H)
    assert torch.allclose(s0, torch.tanh(net.bridge(h[:1])))
    att = net.attention
    e = torch.stack([att.v_a.weight[0] @ torch.tanh(att.w_a.weight @ s0[0] + att.u_a.weight @ h_j) for h_j in h])
    context, weights = att(s0, state.memory, state.keys, state.mask)
    assert torch.allclose(weights[0], e.softmax(0), atol=1e-6)
    assert torch.allclose(context[0], (e.softmax(0)[:, None] * h).sum(0), atol=1e-6)


def test_without_attention_the_decoder_starts_from_the_encoders_final_states_and_has_no_map():
    net = model(attention="none")
    state = net.encode(SOURCES[1:])
    memory = state.memory[0]  # forward half at the last real token (2), backward half at the first
    assert torch.allclose(state.s[0], torch.tanh(net.bridge(torch.cat([memory[2, :16], memory[0, 16:]]))), atol=1e-6)
    assert net.step(state, torch.tensor([BOS_ID]))[1] is None


@pytest.mark.parametrize("name", ["seq2seq_rnn", "seq2seq_transformer"])
def test_forward_with_full_teacher_forcing_is_stepwise_decoding_fed_the_true_tokens(name):
    net = model(name)
    tgt_in = torch.tensor([[BOS_ID, 3, 4, 5], [BOS_ID, 6, 7, EOS_ID]])
    logits = net(SOURCES, tgt_in)
    state = net.encode(SOURCES)
    stepwise = torch.stack([net.step(state, tgt_in[:, i])[0] for i in range(4)], dim=1)
    assert logits.shape == (2, 4, 8) and torch.allclose(logits, stepwise, atol=1e-5)


def test_without_teacher_forcing_a_recurrent_decoder_feeds_itself_its_greedy_choices():
    net = model()
    tgt_in = torch.tensor([[BOS_ID, 3, 4, 5, 6], [BOS_ID, 6, 7, 3, 4]])
    own = net(SOURCES, tgt_in, teacher_forcing=0.0).argmax(-1)
    assert torch.equal(own, greedy(net, SOURCES, 5))
    assert not torch.equal(net(SOURCES, tgt_in, teacher_forcing=1.0).argmax(-1), own)


def test_teacher_forcing_decays_linearly_with_the_step_the_loop_passes():
    objective = objectives.get("seq2seq").build(model(), SPEC, None, teacher_forcing=1.0, teacher_forcing_end=0.2)
    ratios = []
    for step in (0, 50, 100, 150):
        objective.advance(step, 100)
        ratios.append(objective.teacher_forcing)
    assert ratios == pytest.approx([1.0, 0.6, 0.2, 0.2])
    constant = objectives.get("seq2seq").build(model(), SPEC, None, teacher_forcing=0.7)
    constant.advance(90, 100)
    assert constant.teacher_forcing == 0.7


def test_the_training_loop_advances_the_ratio(tmp_path):
    from dlx.train import loop

    config = validate(tiny_config(tmp_path, "decay", {"objective": {"name": "seq2seq", "teacher_forcing": 1.0,
                                                                      "teacher_forcing_end": 0.0}}))
    trainer = loop.Trainer(config, quiet=True)
    batches = trainer.train_batches.epoch(trainer.data_order)
    for step in range(3):
        trainer.train_batch(*next(batches))
        trainer.state.step += 1
        assert trainer.objective.teacher_forcing == pytest.approx(1 - step / trainer.total_steps)


# --- decoding ----------------------------------------------------------------------------------------------------
class TableModel(torch.nn.Module):
    """Next-token probabilities that depend only on the previous token: greedy and beam search part ways."""

    max_length = None
    TABLE = {BOS_ID: {3: 0.6, 4: 0.4}, 3: {EOS_ID: 0.3, 3: 0.36, 4: 0.34}, 4: {EOS_ID: 0.9, 3: 0.05, 4: 0.05}}

    def encode(self, src):
        return DecoderState(src=src)

    def step(self, state, token):
        probs = torch.full((len(token), 5), 1e-9)
        for i, t in enumerate(token.tolist()):
            for j, p in self.TABLE[t].items():
                probs[i, j] = p
        return probs.log(), None


def test_beam_search_finds_the_likelier_output_that_greedy_misses():
    src = torch.tensor([3])
    assert greedy(TableModel(), src[None], 4).tolist() == [[3, 3, 3, 3]]  # 0.6 * 0.36 * ... never ends
    beam = beam_search(TableModel(), src, 10, width=2)
    assert beam.tokens == [4] and beam.log_prob == pytest.approx(math.log(0.4 * 0.9)) and beam.attention is None


@pytest.mark.parametrize("predicted, target, exact, right, real", [
    ([[3, 4, EOS_ID]], [[3, 4, EOS_ID]], True, 3, 3),
    ([[3, 4, EOS_ID, 5]], [[3, 4, EOS_ID, PAD_ID]], True, 3, 3),  # what follows </s> is never read
    ([[3, 4, 5, EOS_ID]], [[3, 4, EOS_ID, PAD_ID]], False, 2, 3),  # too long
    ([[3, EOS_ID, 4]], [[3, 4, EOS_ID]], False, 1, 3),  # too short
    ([[4, 3, EOS_ID]], [[3, 4, EOS_ID]], False, 1, 3),
    ([[3, 4]], [[3, 4, EOS_ID]], False, 2, 3),  # cut short of the target
])
def test_exact_and_token_accuracy_count_to_the_end_token(predicted, target, exact, right, real):
    e, r, n = exact_and_tokens(torch.tensor(predicted), torch.tensor(target))
    assert (bool(e[0]), int(r[0]), int(n[0])) == (exact, right, real)


def test_registered_metrics_measure_and_bleu_reads_words():
    spec = DataSpec((3,), SEQ2SEQ, num_classes=7, class_names=(*"\0\1\2", " ", "a", "b", "c"))
    predicted, target = torch.tensor([[4, 3, 5, EOS_ID], [4, EOS_ID, 0, 0]]), torch.tensor([[4, 3, 5, EOS_ID], [5, EOS_ID, 0, 0]])
    values = {}
    for name in ("sequence_accuracy", "token_accuracy", "bleu"):
        metric = registry.metrics.get(name).build(spec)
        metric.update(predicted, target)
        values[name] = float(metric.compute())
    assert values["sequence_accuracy"] == 0.5 and values["token_accuracy"] == pytest.approx(5 / 6)
    assert 0.0 <= values["bleu"] < 1.0


# --- a trained run: generate and evaluate ------------------------------------------------------------------------
def tiny_config(tmp_path, name: str, more: dict | None = None) -> dict:
    return {"name": name, "seed": 0,
            "data": {"name": "reverse", "n": 600, "min_length": 3, "max_length": 6, "letters": 5, "split": [0.8, 0.1, 0.1]},
            "model": {"name": "seq2seq_rnn", "embedding": 8, "hidden": 32}, "objective": {"name": "seq2seq"},
            "optimizer": {"name": "adam", "lr": 0.01}, **(more or {}),
            "train": {"epochs": 12, "batch_size": 32, "device": "cpu", "threads": 1, "monitor": "val/sequence_accuracy"}}


@pytest.fixture(scope="module")
def reversal_run(tmp_path_factory):
    from dlx.train import loop

    folder = tmp_path_factory.mktemp("seq2seq")
    run, summary = loop.start(validate(tiny_config(folder, "rev")), folder / "runs", quiet=True)
    return run.path, summary


def test_a_tiny_reversal_learns_and_saves_both_vocabularies(reversal_run):
    path, summary = reversal_run
    assert summary["metrics"]["test"]["sequence_accuracy"] > 0.8
    vocab = json.loads((path / "vocab.json").read_text())
    assert vocab["source"] == vocab["target"] == ["<pad>", "<s>", "</s>", *"abcde"]


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_generate_translates_each_input_and_draws_its_attention(reversal_run, strategy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["generate", str(reversal_run[0]), "--input", "abcde", "--input", "eddc"]
    result = CliRunner().invoke(app, [*args, *([] if strategy == "greedy" else ["--strategy", "beam", "--beam-width", "3"])])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["edcba", "cdde"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rev-attention-1.png", "rev-attention-2.png"]
    if strategy == "beam":
        assert "log-probability" in result.output


@pytest.mark.parametrize("args, message", [
    (["--input", "abz"], "--input: characters not in the model's vocabulary: 'z'"),
    (["--prompt", "ab"], "--prompt continues a language model's text; this run translates"),
    (["--input", "ab", "--strategy", "sample"], "--strategy sample draws from a language model"),
    ([], "this run translates: give the text with --input TEXT"),
])
def test_generate_refuses_what_a_translation_cannot_do_in_one_line(reversal_run, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["generate", str(reversal_run[0]), *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
    assert not list(tmp_path.iterdir())


def test_evaluate_reports_accuracy_by_source_length(reversal_run):
    result = CliRunner().invoke(app, ["evaluate", str(reversal_run[0]), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    lengths = [row["source_length"] for row in report["by_source_length"]]
    assert lengths == [3, 4, 5, 6] and sum(row["examples"] for row in report["by_source_length"]) == report["examples"]
    assert set(report["metrics"]) == {"sequence_accuracy", "token_accuracy"}  # no BLEU without words
    assert report["metrics"]["sequence_accuracy"] == pytest.approx(
        sum(r["sequence_accuracy"] * r["examples"] for r in report["by_source_length"]) / report["examples"])
    saved = json.loads((reversal_run[0] / "evaluation.json").read_text())
    assert saved["test/best"]["by_source_length"] == report["by_source_length"]
    table = CliRunner().invoke(app, ["evaluate", str(reversal_run[0])])
    assert "by source length" in table.output
    refused = CliRunner().invoke(app, ["evaluate", str(reversal_run[0]), "--top-losses", "3"])
    assert refused.exit_code == 2 and "--top-losses applies to runs of the supervised objective" in refused.output


@pytest.mark.parametrize("more, message", [
    ({"data": {"name": "digits"}}, "model 'seq2seq_rnn' is an encoder-decoder: it needs pairs of sequences"),
    ({"model": {"name": "seq2seq_transformer", "max_length": 4}}, "more than model.max_length=4"),
    ({"model": {"name": "seq2seq_transformer", "max_length": 6}}, "the targets are up to 7 tokens long with <s>"),
])
def test_data_that_does_not_fit_is_one_line(tmp_path, more, message):
    config = {**tiny_config(tmp_path, "bad"), **more}
    with pytest.raises(DlxError, match=message):
        from dlx.train import loop

        loop.Trainer(validate(config), quiet=True)


@pytest.mark.parametrize("name", ["reverse_seq2seq_attention", "dates_seq2seq_attention", "sort_transformer"])
def test_each_seq2seq_experiment_trains_on_a_few_pairs(name, runs_dir):
    from dlx.config import load
    from dlx.train import loop
    from tests.conftest import EXPERIMENTS

    overrides = ["train.device=cpu", "train.threads=1", "train.epochs=1", "data.n=200"]
    summary = loop.start(load(EXPERIMENTS / f"{name}.yaml", overrides), runs_dir, quiet=True)[1]
    assert summary["epochs"] == 1 and 0.0 <= summary["metrics"]["test"]["sequence_accuracy"] <= 1.0


def test_evaluate_on_other_pairs_reads_them_with_the_runs_vocabulary(reversal_run, tmp_path):
    """Another file has a vocabulary of its own (here d and e are ids 3 and 4, the run's 6 and 7): its ids are
    translated into the run's, and a character the run never saw is one line."""
    words = ["ed", "dee", "edde", "deed", "eded", "ddee", "eed", "ede", "dde", "ded"]
    path = write_tsv(tmp_path / "de.tsv", "".join(f"{w}\t{w[::-1]}\n" for w in words))
    data = ["--set", "data.name=parallel_text", "--set", f"data.path={path}"]
    result = CliRunner().invoke(app, ["evaluate", str(reversal_run[0]), "--json", *data])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["sequence_accuracy"] >= 0.5
    write_tsv(tmp_path / "de.tsv", "".join(f"{w}z\t{w[::-1]}\n" for w in words))
    refused = CliRunner().invoke(app, ["evaluate", str(reversal_run[0]), *data])
    assert refused.exit_code == 2 and "the sources: characters not in the model's vocabulary: 'z'" in refused.output
