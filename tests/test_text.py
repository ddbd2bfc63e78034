"""Text data and language models: vocabulary, splits, windows, corpora, losses and metrics, the models."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from dlx import registry
from dlx.data.base import LANGUAGE, DataSpec
from dlx.data.text import RandomWindows, TextCorpus, Vocab, Windows, fixed_windows, text_splits
from dlx.errors import DlxError
from dlx.models.gpt import sinusoidal_positions
from tests.conftest import ROOT

SHAKESPEARE = ROOT.parent / "shared" / "data"
# next-token models (word2vec reads text too, but scores the words of a window: tests/test_word_vectors.py)
LANGUAGE_MODELS = [n for n in registry.models.names() if registry.models.get(n).meta.get("task") == LANGUAGE
                   and registry.models.get(n).meta.get("objective", "supervised") == "supervised"]
CPU = torch.device("cpu")

pytestmark = pytest.mark.usefixtures("one_thread")


def test_vocab_round_trips():
    text = "To be, or not to be: ça\n"
    vocab = Vocab.of(text)
    assert vocab.chars == tuple(sorted(set(text)))
    ids = vocab.encode(text)
    assert ids.dtype == torch.int64 and vocab.decode(ids) == text
    again = Vocab.from_json(vocab.to_json())
    assert again.chars == vocab.chars and again.decode(again.encode(text)) == text


def test_unknown_characters_are_named():
    with pytest.raises(DlxError, match=r"'Z', 'é'") as e:
        Vocab.of("abc").encode("abZcé")
    assert "vocabulary" in str(e.value)


def corpus(text: str, **windows) -> TextCorpus:
    return TextCorpus(text, Windows(**windows), "test text")


def test_splits_are_contiguous_blocks_in_order():
    text = "".join(chr(97 + i % 26) for i in range(1000))
    splits = text_splits(corpus(text, block_size=8), (0.8, 0.1, 0.1), CPU)
    vocab = splits.vocab
    pieces = [vocab.decode(splits.streams[s]) for s in ("train", "val", "test")]
    assert "".join(pieces) == text and [len(p) for p in pieces] == [800, 100, 100]
    assert splits.spec == DataSpec((8,), LANGUAGE, num_classes=26, class_names=vocab.chars)


def test_windows_predict_the_next_character_and_replay_on_resume():
    stream = torch.arange(500)
    windows = RandomWindows(stream, block_size=16, batch_size=4, steps=6)
    batches = list(windows.epoch(torch.Generator().manual_seed(3)))
    assert len(batches) == len(windows) == 6
    for x, y in batches:
        assert x.shape == y.shape == (4, 16)
        assert torch.equal(y, x + 1)  # the target is the window shifted by one character
        assert torch.equal(x[:, 1:], x[:, :-1] + 1)  # contiguous text
    resumed = list(windows.epoch(torch.Generator().manual_seed(3), start=4))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches[4:], resumed)) and len(resumed) == 2


def test_evaluation_windows_are_fixed_and_spread_evenly():
    x, y = fixed_windows(torch.arange(1001), block_size=10, limit=4)
    assert x[:, 0].tolist() == [0, 250, 500, 750] and torch.equal(y, x + 1)
    x, _ = fixed_windows(torch.arange(101), block_size=10, limit=100)
    assert x.shape == (10, 10)


def test_too_short_a_split_is_a_clear_error():
    with pytest.raises(DlxError, match="block_size"):
        text_splits(corpus("abcdefghij" * 10, block_size=32), (0.8, 0.1, 0.1), CPU)


def test_text_dataset_reads_a_file_a_directory_and_a_glob(tmp_path):
    (tmp_path / "a.txt").write_text("alpha\n")
    (tmp_path / "b.txt").write_text("beta\n")
    (tmp_path / "c.md").write_text("gamma\n")
    entry = registry.datasets.get("text")
    assert entry.build(path=str(tmp_path / "a.txt")).text == "alpha\n"
    assert entry.build(path=str(tmp_path)).text == "alpha\nbeta\ngamma\n"
    assert entry.build(path=str(tmp_path / "*.txt")).text == "alpha\nbeta\n"
    with pytest.raises(DlxError, match="no file"):
        entry.build(path=str(tmp_path / "*.csv"))


def test_tinyshakespeare_offline_and_absent_says_where_to_put_it(tmp_path):
    """Downloading is tested in tests/test_download.py; here (tests run with DLX_OFFLINE=1) the message."""
    with pytest.raises(DlxError, match=str(tmp_path / "tinyshakespeare" / "input.txt")):
        registry.datasets.get("tinyshakespeare").build(root=str(tmp_path))


@pytest.mark.skipif(not (SHAKESPEARE / "tinyshakespeare" / "input.txt").is_file(),
                    reason="the tiny Shakespeare file is not on this machine (no download in tests)")
def test_tinyshakespeare_loads_from_the_data_dir(monkeypatch):
    monkeypatch.setenv("DLX_DATA", str(SHAKESPEARE))
    data = registry.datasets.get("tinyshakespeare").build()
    assert len(data.text) == 1_115_394 and data.text.startswith("First Citizen:")
    assert len(Vocab.of(data.text)) == 65


def test_python_stdlib_is_an_offline_code_corpus():
    data = registry.datasets.get("python_stdlib").build(max_chars=20_000)
    assert len(data.text) == 20_000 and "def " in data.text


def test_the_language_loss_and_metrics_agree():
    torch.manual_seed(0)
    logits, target = torch.randn(3, 7, 11), torch.randint(0, 11, (3, 7))
    spec = DataSpec((7,), LANGUAGE, num_classes=11, class_names=tuple("abcdefghijk"))
    nll = F.cross_entropy(logits.reshape(-1, 11), target.reshape(-1))
    loss = registry.losses.get("cross_entropy").build()
    assert torch.allclose(loss(logits, target), nll)
    perplexity, bpc = (registry.metrics.get(n).build(spec) for n in ("perplexity", "bpc"))
    perplexity.update(logits, target)
    bpc.update(logits, target)
    assert math.isclose(perplexity.compute().item(), math.exp(nll.item()), rel_tol=1e-4)
    assert math.isclose(bpc.compute().item(), nll.item() / math.log(2), rel_tol=1e-4)


def test_sinusoidal_positions_follow_the_course():
    d = 6
    table = sinusoidal_positions(50, d)
    for k in (0, 1, 7, 49):
        for i in range(d // 2):
            assert math.isclose(table[k, 2 * i].item(), math.sin(k / 10000 ** (2 * i / d)), abs_tol=1e-6)
            assert math.isclose(table[k, 2 * i + 1].item(), math.cos(k / 10000 ** (2 * i / d)), abs_tol=1e-6)
    assert sinusoidal_positions(4, 5).shape == (4, 5)  # odd width: one more sine than cosines


SPEC = DataSpec((12,), LANGUAGE, num_classes=9, class_names=tuple("abcdefghi"))


@pytest.mark.parametrize("positions, token_scale", [("learned", 1.0), ("sinusoidal", 4.0)])
def test_sinusoidal_positions_meet_token_embeddings_scaled_by_sqrt_width(positions, token_scale):
    """The transformer paper's way: token embeddings times sqrt(d_model) = 4 before the amplitude-1 table is added
    (unscaled, a std-0.02 embedding drowned in it and the model stalled at the unigram loss); learned positions
    start at the tokens' own scale and are added to them as they are."""
    entry = registry.models.get("gpt")
    model = entry.build(SPEC, **entry.resolve({"width": 16, "heads": 2, "layers": 1, "positions": positions}, "model"))
    seen = []
    model.drop.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    idx = torch.tensor([[0, 3, 8, 3, 1]])
    model(idx)
    expected = model.tok(idx) * token_scale + model.pos(torch.arange(5))
    assert torch.equal(seen[0], expected)


@pytest.mark.parametrize("name", LANGUAGE_MODELS)
def test_language_models_map_tokens_to_next_token_logits(name):
    entry = registry.models.get(name)
    model = entry.build(SPEC, **entry.resolve({}, "model"))
    assert model(torch.randint(0, 9, (2, 12))).shape == (2, 12, 9)  # (B, T, V)
    with pytest.raises(DlxError, match="text data"):
        entry.build(DataSpec((4,), "classification", num_classes=2), **entry.resolve({}, "model"))


def test_gpt_shares_its_embedding_with_the_output_layer_and_checks_its_sizes():
    entry = registry.models.get("gpt")
    model = entry.build(SPEC, **entry.resolve({"width": 16, "heads": 2}, "model"))
    assert model.head.weight is model.tok.weight and model.max_context == 12
    for settings, message in (({"width": 10, "heads": 3}, "multiple"), ({"block_size": 8}, "shorter")):
        with pytest.raises(DlxError, match=message):
            entry.build(SPEC, **entry.resolve(settings, "model"))


def test_a_language_run_logs_perplexity_samples_and_its_vocabulary(tmp_path):
    from dlx.config import validate
    from dlx.run import checkpoint
    from dlx.train import loop

    (tmp_path / "t.txt").write_text("the cat sat on the mat. " * 60)
    config = validate({
        "name": "lm", "data": {"name": "text", "path": str(tmp_path / "t.txt"), "block_size": 16, "steps_per_epoch": 4,
                               "eval_windows": 8, "split": [0.8, 0.1, 0.1]},
        "model": {"name": "char_gru", "hidden": 16, "layers": 1},
        "train": {"epochs": 2, "batch_size": 4, "device": "cpu"}, "samples": {"every": 4, "length": 10},
    })
    run, summary = loop.start(config, tmp_path / "runs", quiet=True)
    history = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert {"val/loss", "val/perplexity", "val/bpc"} <= set(history[-1])
    assert math.isclose(history[-1]["val/perplexity"], math.exp(history[-1]["val/loss"]), rel_tol=1e-3)
    assert Vocab.from_json((run.path / "vocab.json").read_text()).chars == tuple(sorted(set("the cat sat on mat.")))
    assert checkpoint.load(run.checkpoint("best")).spec["task"] == LANGUAGE
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run.path), size_guidance={"tensors": 0})
    events.Reload()
    assert "samples/text_summary" in events.Tags()["tensors"]
    assert len(events.Tensors("samples/text_summary")) == 2  # steps 4 and 8


def test_a_time_budget_ends_training_early(tmp_path):
    from dlx.config import validate
    from dlx.train import loop

    (tmp_path / "t.txt").write_text("abcdefgh" * 200)
    config = validate({
        "name": "budget", "data": {"name": "text", "path": str(tmp_path / "t.txt"), "block_size": 8,
                                   "steps_per_epoch": 100_000, "eval_windows": 4},
        "model": {"name": "char_rnn", "hidden": 8, "layers": 1},
        "train": {"epochs": 3, "batch_size": 2, "device": "cpu", "max_minutes": 0.01},
    })
    _, summary = loop.start(config, tmp_path / "runs", quiet=True)
    assert summary["epochs"] == 1 and 0 < summary["steps"] < 100_000 and summary["early_stopped"]
