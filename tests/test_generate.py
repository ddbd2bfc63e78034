"""Sampling, greedy and beam search, the KV cache, and `dlx generate` on a tiny trained run."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from dlx import registry
from dlx.cli import app
from dlx.data.base import LANGUAGE, DataSpec
from dlx.models.decode import Reader, beam_search, sample
from dlx.models.sampling import filter_logits

SPEC = DataSpec((8,), LANGUAGE, num_classes=7, class_names=tuple("abcdefg"))

pytestmark = pytest.mark.usefixtures("one_thread")


class KnownLogits(nn.Module):
    """A language model whose next-token logits are the same fixed vector after any text."""

    max_context = None

    def __init__(self, logits: list[float]):
        super().__init__()
        self.logits = torch.tensor(logits)

    def new_cache(self):
        return None

    def forward(self, idx, cache=None):
        return self.logits.expand(*idx.shape, -1)  # (B, T, V)


PROBS = [0.4, 0.25, 0.15, 0.1, 0.06, 0.04]  # distinct, sorted, so the expected supports are plain prefixes
LOGITS = [math.log(p) for p in PROBS]


def support(logits: torch.Tensor) -> set[int]:
    return set(torch.nonzero(torch.isfinite(logits[0])).flatten().tolist())


@pytest.mark.parametrize(("k", "expected"), [(1, {0}), (3, {0, 1, 2}), (6, set(range(6))), (9, set(range(6)))])
def test_top_k_keeps_exactly_the_k_most_likely(k, expected):
    shuffled = torch.tensor([LOGITS[i] for i in (3, 0, 5, 1, 4, 2)])[None]  # the order must not matter
    kept = support(filter_logits(shuffled, top_k=k))
    assert {(3, 0, 5, 1, 4, 2)[i] for i in kept} == expected


# cumulative probabilities 0.4, 0.65, 0.8, 0.9, 0.96, 1.0: p just below and above each
@pytest.mark.parametrize(("p", "expected"), [(0.39, {0}), (0.41, {0, 1}), (0.64, {0, 1}), (0.66, {0, 1, 2}),
                                             (0.79, {0, 1, 2}), (0.81, {0, 1, 2, 3}), (0.91, {0, 1, 2, 3, 4}),
                                             (0.97, set(range(6))), (1.0, set(range(6)))])
def test_top_p_keeps_the_fewest_tokens_reaching_p(p, expected):
    assert support(filter_logits(torch.tensor([LOGITS]), top_p=p)) == expected


def test_sampling_draws_from_exactly_the_kept_support():
    model = KnownLogits(LOGITS)
    prompt = torch.tensor([0])
    drawn = set(sample(model, prompt, 400, top_k=3, generator=torch.Generator().manual_seed(0)))
    assert drawn == {0, 1, 2}
    drawn = set(sample(model, prompt, 400, top_p=0.9, generator=torch.Generator().manual_seed(0)))
    assert drawn == {0, 1, 2, 3}


@pytest.fixture(scope="module", params=["gpt", "char_lstm"])
def lm(request):
    torch.manual_seed(0)
    entry = registry.models.get(request.param)
    small = {"gpt": {"width": 16, "heads": 2, "layers": 2}, "char_lstm": {"hidden": 16, "layers": 2}}[request.param]
    return entry.build(SPEC, **entry.resolve(small, "model")).eval()


def on(model: nn.Module, device: str) -> nn.Module:
    """A copy of a module-scoped model on a device: the other tests keep the original where it was."""
    return copy.deepcopy(model).to(device)


def greedy_by_full_recompute(model, prompt: torch.Tensor, steps: int) -> list[int]:
    reader = Reader(model, prompt[None], use_cache=False)
    for _ in range(steps):
        reader.append(reader.next_logits().argmax(-1))
    return reader.tokens[0, len(prompt):].tolist()


def test_seeded_sampling_is_reproducible(lm):
    prompt = torch.tensor([1, 2, 3])
    first = list(sample(lm, prompt, 30, generator=torch.Generator().manual_seed(7)))
    assert list(sample(lm, prompt, 30, generator=torch.Generator().manual_seed(7))) == first
    assert list(sample(lm, prompt, 30, generator=torch.Generator().manual_seed(8))) != first


def test_temperature_zero_is_greedy(lm, device):
    model, prompt = on(lm, device), torch.tensor([4, 0], device=device)
    assert list(sample(model, prompt, 20, temperature=0.0)) == greedy_by_full_recompute(model, prompt, 20)


def test_beam_width_one_is_greedy_and_the_log_probability_is_the_paths(lm):
    prompt = torch.tensor([2])
    ids, log_prob = beam_search(lm, prompt, 20, width=1)
    assert ids.tolist() == greedy_by_full_recompute(lm, prompt, 20)
    tokens = torch.cat([prompt, ids])[None]
    reader, total = Reader(lm, tokens[:, :1], use_cache=False), 0.0
    for t in range(1, tokens.shape[1]):
        total += reader.next_logits().log_softmax(-1)[0, tokens[0, t]].item()
        reader.append(tokens[:, t])
    assert math.isclose(log_prob, total, rel_tol=1e-4)


def test_a_wider_beam_finds_a_path_at_least_as_likely(lm):
    prompt = torch.tensor([5, 1])
    assert beam_search(lm, prompt, 12, width=4)[1] >= beam_search(lm, prompt, 12, width=1)[1] - 1e-5


def test_the_kv_cache_gives_the_logits_of_a_full_recompute_past_the_block_size(lm, device):
    lm = on(lm, device)
    tokens = torch.randint(0, 7, (2, 30), generator=torch.Generator().manual_seed(1)).to(device)  # 30 > block size 8
    cached, full = Reader(lm, tokens[:, :3]), Reader(lm, tokens[:, :3], use_cache=False)
    for t in range(3, 30):
        a, b = cached.next_logits(), full.next_logits()
        assert torch.allclose(a, b, atol=1e-5), t
        if lm.max_context is not None:
            assert torch.allclose(b, lm(tokens[:, full.start:t])[:, -1], atol=1e-5)  # the window the model saw
        cached.append(tokens[:, t])
        full.append(tokens[:, t])
    assert lm.max_context is None or cached.start > 0  # the window did slide


def test_sampling_with_and_without_the_kv_cache_draws_the_same_text(lm, device):
    model, prompt = on(lm, device), torch.tensor([3, 1], device=device)
    drawn = [list(sample(model, prompt, 40, top_k=4, use_cache=use_cache,
                         generator=torch.Generator(device=device).manual_seed(5))) for use_cache in (True, False)]
    assert drawn[0] == drawn[1]


def test_sinusoidal_gpt_caches_alike():
    entry = registry.models.get("gpt")
    model = entry.build(SPEC, **entry.resolve({"width": 16, "heads": 2, "positions": "sinusoidal"}, "model")).eval()
    tokens = torch.randint(0, 7, (1, 20), generator=torch.Generator().manual_seed(2))
    cached, full = Reader(model, tokens[:, :1]), Reader(model, tokens[:, :1], use_cache=False)
    for t in range(1, 20):
        assert torch.allclose(cached.next_logits(), full.next_logits(), atol=1e-5)
        cached.append(tokens[:, t])
        full.append(tokens[:, t])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from dlx.config import validate
    from dlx.train import loop

    folder = tmp_path_factory.mktemp("lm")
    (folder / "t.txt").write_text("ROMEO: the cat sat on the mat.\nJULIET: the dog sat on the log.\n" * 40)
    config = validate({
        "name": "tiny", "data": {"name": "text", "path": str(folder / "t.txt"), "block_size": 16,
                                 "steps_per_epoch": 10, "eval_windows": 8, "split": [0.8, 0.1, 0.1]},
        "model": {"name": "gpt", "width": 16, "heads": 2, "layers": 1}, "optimizer": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 1, "batch_size": 8, "device": "cpu"},
    })
    run, _ = loop.start(config, folder / "runs", quiet=True)
    return run.path


def test_generate_streams_text_to_the_terminal_and_writes_out(tiny_run, tmp_path):
    out = tmp_path / "sample.txt"
    result = CliRunner().invoke(app, ["generate", str(tiny_run), "--prompt", "ROMEO:", "--max-new-tokens", "40",
                                      "--seed", "3", "--top-k", "5", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text().rstrip("\n")
    assert text.startswith("ROMEO:") and len(text) == len("ROMEO:") + 40
    assert text in result.stdout
    again = CliRunner().invoke(app, ["generate", str(tiny_run), "--prompt", "ROMEO:", "--max-new-tokens", "40",
                                     "--seed", "3", "--top-k", "5", "--no-stream"])
    assert text in again.stdout  # the same seed, the same text


def test_generation_hands_over_each_character_as_it_is_chosen(tiny_run):
    from dlx.generate.run import Options, generate

    pieces: list[str] = []
    [result] = generate(tiny_run, Options(prompt="the", max_new_tokens=25, seed=0), pieces.append)
    assert len(pieces) == 1 + 25 and "".join(pieces) == result.text


def test_generate_beam_and_greedy_from_the_command_line(tiny_run):
    beam = CliRunner().invoke(app, ["generate", str(tiny_run), "--strategy", "beam", "--beam-width", "3",
                                    "--max-new-tokens", "20", "--prompt", "the"])
    assert beam.exit_code == 0 and "log-probability" in beam.stderr
    greedy = [CliRunner().invoke(app, ["generate", str(tiny_run), "--max-new-tokens", "20", *extra]).stdout
              for extra in (["--strategy", "greedy"], ["--temperature", "0"])]
    assert greedy[0] == greedy[1]


@pytest.mark.parametrize(("args", "message"), [
    (["--prompt", "Zé"], "'Z', 'é'"),
    (["--prompt", "a", "--prompt-file", "x.txt"], "not both"),
    (["--strategy", "beam", "--num-samples", "2"], "one best beam"),
    (["--checkpoint", "last", "--prompt", ""], "at least one character"),
])
def test_generate_refuses_bad_requests_in_one_line(tiny_run, args, message):
    result = CliRunner().invoke(app, ["generate", str(tiny_run), *args])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output


def test_evaluate_reports_perplexity_and_bits_per_character(tiny_run):
    import json

    result = CliRunner().invoke(app, ["evaluate", str(tiny_run), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["metrics"]
    assert math.isclose(metrics["bpc"], math.log2(metrics["perplexity"]), rel_tol=1e-4)
