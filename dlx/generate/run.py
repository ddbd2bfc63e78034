"""`dlx generate`: text from a trained run's language model, streamed as it is chosen."""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from dlx import limits, threads
from dlx.data.base import LANGUAGE
from dlx.data.text import Vocab, vocab_of
from dlx.data.words import WordVocab
from dlx.errors import DlxError
from dlx.models.decode import beam_search, sample
from dlx.run.trained import open_trained


@dataclass
class Options:
    prompt: str | None = None  # None: a newline, or the vocabulary's first character if it has none
    max_new_tokens: int = 500
    temperature: float = 1.0  # 0: greedy
    top_k: int | None = None
    top_p: float | None = None
    strategy: Literal["sample", "greedy", "beam"] | None = None  # None: sample from a language model, greedy translation
    beam_width: int = 4
    num_samples: int = 1
    seed: int | None = None  # None: a fresh seed, reported so the sample can be repeated
    checkpoint: Literal["best", "last"] = "best"
    threads: int | Literal["auto"] | None = None  # CPU threads; None: the count the run trained with
    inputs: list[str] = field(default_factory=list)  # what an encoder-decoder translates, each in turn


@dataclass
class Sample:
    text: str  # the prompt followed by the generated characters; a translation's output
    log_prob: float | None = None  # beam search: the continuation's log-probability under the model
    figure: Path | None = None  # a translation's attention heat map


def load_language_model(run_path: str | Path, which: str) -> tuple[nn.Module, Vocab | WordVocab]:
    """The run's model with a checkpoint's weights, and its vocabulary (both from the checkpoint: no data needed);
    torch computes with the thread count the run trained with."""
    trained = open_trained(run_path, which, device="cpu")
    if trained.spec.task != LANGUAGE:
        raise DlxError(f"{trained.run.path} is not a language-model run (its data is not text); dlx generate needs one, "
                       f"e.g. from experiments/shakespeare_char_gpt.yaml, or a VAE's or GAN's run for images")
    return trained.model, vocab_of(trained.spec)


# the options each way of generating reads (the CLI's parameter names); any other one typed would be dropped unread.
# What is generated from (--prompt, --prompt-file, --input) the task's own check refuses, saying what to give instead.
ALWAYS = frozenset({"run", "checkpoint", "threads", "out_file", "stream", "max_new_tokens", "strategy", "seed",
                    "prompt", "prompt_file", "inputs"})
READS = {
    ("continue", "sample"): {"temperature", "top_k", "top_p", "num_samples"},
    ("continue", "greedy"): {"num_samples"},
    ("continue", "beam"): {"beam_width", "num_samples"},  # more than one: check() says a search has one best beam
    ("translate", "greedy"): set(),
    ("translate", "beam"): {"beam_width"},
}


def refuse_unread(given: set[str], translating: bool, strategy: str | None) -> None:
    """Refuse an option this run and strategy would not read (a --temperature of a greedy or beam search, a --top-k
    of a translation): the user's value would be dropped without a word."""
    task = "translate" if translating else "continue"
    strategy = strategy or ("greedy" if translating else "sample")
    if (task, strategy) not in READS:  # a translation's --strategy sample: translate.check says why
        return
    if unread := sorted(given - ALWAYS - READS[task, strategy]):
        doing = "this run translates" if translating else "this run continues text"
        raise DlxError(f"--{unread[0].replace('_', '-')} is not read when {doing} with --strategy {strategy}; "
                       f"leave it out")


def check(options: Options) -> None:
    """Refuse a request that cannot be served, before any model is read."""
    if options.top_p == 0.0:  # no character at all would be kept
        raise DlxError("--top-p: give a probability above 0 (1 keeps every character)")
    if options.strategy == "beam" and options.num_samples > 1:
        raise DlxError("--num-samples: beam search returns its one best beam; use --strategy sample for several")
    limits.check("--max-new-tokens", options.max_new_tokens, limits.NEW_TOKENS, "characters per sample")
    limits.check("--num-samples", options.num_samples, limits.SAMPLES, "samples")
    # the model's context slides, so its block size bounds nothing; what grows is the text held in memory
    held, what = ((options.beam_width, "--beam-width x --max-new-tokens") if options.strategy == "beam"
                  else (options.num_samples, "--num-samples x --max-new-tokens"))
    limits.check(what, held * options.max_new_tokens, limits.TOKENS_HELD, "characters held in memory")


def generate(run_path: str | Path, options: Options, write: Callable[[str], None] = lambda text: None,
             note: Callable[[str], None] = lambda text: None) -> list[Sample]:
    """Samples from a run; `write` receives each sample's text as it is produced, `note` one-line remarks."""
    check(options)
    from dlx.generate import translate

    if translate.translates(run_path):
        return translate.translate(run_path, options, write, note)
    if options.inputs:
        raise DlxError("--input is what an encoder-decoder translates; a language model continues a --prompt")
    model, vocab = load_language_model(run_path, options.checkpoint)
    if options.threads is not None:  # auto times one new character's forward pass, the work of each step of generation
        note(threads.choose(options.threads, threads.forward_probe(model, torch.zeros(1, 1, dtype=torch.long))).line())
    prompt_text = vocab.default_prompt if options.prompt is None else options.prompt
    if not prompt_text:
        raise DlxError("--prompt: give at least one character (or leave it out to start from a newline)")
    if isinstance(vocab, WordVocab) and (unknown := vocab.unknown(prompt_text)):
        note(f"--prompt: {', '.join(map(repr, unknown))} not in the vocabulary, read as <unk>")
    prompt = vocab.encode(prompt_text)
    if options.strategy == "beam":
        ids, log_prob = beam_search(model, prompt, options.max_new_tokens, options.beam_width)
        text = prompt_text + vocab.decode(ids)
        write(text)
        return [Sample(text, log_prob)]
    seed = random.randrange(2**31) if options.seed is None else options.seed
    if options.seed is None:
        note(f"seed {seed} (--seed {seed} repeats these samples)")
    generator = torch.Generator().manual_seed(seed)
    temperature = 0.0 if options.strategy == "greedy" else options.temperature
    samples = []
    for i in range(options.num_samples):
        if i:
            write("\n\n")  # as the samples are joined when they are not streamed
        if options.num_samples > 1:
            note(f"sample {i + 1}/{options.num_samples}")
        write(prompt_text)
        pieces = [prompt_text]
        for token in sample(model, prompt, options.max_new_tokens, temperature, options.top_k, options.top_p, generator):
            pieces.append(vocab.piece(token))
            write(pieces[-1])
        samples.append(Sample("".join(pieces)))
    return samples
