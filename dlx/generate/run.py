"""`dlx generate`: text from a trained run's language model, streamed as it is chosen."""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from dlx import build, threads
from dlx.config import Config
from dlx.config import load as load_config
from dlx.data.base import LANGUAGE, DataSpec
from dlx.data.text import Vocab
from dlx.errors import DlxError
from dlx.generate.decode import beam_search, sample
from dlx.run.folder import Run
from dlx.run import checkpoint as checkpoints


@dataclass
class Options:
    prompt: str | None = None  # None: a newline, or the vocabulary's first character if it has none
    max_new_tokens: int = 500
    temperature: float = 1.0  # 0: greedy
    top_k: int | None = None
    top_p: float | None = None
    strategy: Literal["sample", "greedy", "beam"] = "sample"
    beam_width: int = 4
    num_samples: int = 1
    seed: int | None = None  # None: a fresh seed, reported so the sample can be repeated
    checkpoint: Literal["best", "last"] = "best"
    threads: int | Literal["auto"] | None = None  # CPU threads; None: the count the run trained with


@dataclass
class Sample:
    text: str  # the prompt followed by the generated characters
    log_prob: float | None = None  # beam search: the continuation's log-probability under the model


def load_language_model(run_path: str | Path, which: str) -> tuple[nn.Module, Vocab, Config]:
    """The run's model with a checkpoint's weights, its vocabulary (both from the checkpoint: no data needed) and
    its config."""
    run = Run.open(run_path)
    config = load_config(run.config_path)
    state = checkpoints.load(run.checkpoint(which))
    saved = state.get("spec")
    if saved is None or saved.get("task") != LANGUAGE:
        raise DlxError(f"{run.path} is not a language-model run (its data is not text); dlx generate needs one, "
                       f"e.g. from experiments/shakespeare_char_gpt.yaml")
    spec = DataSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved.items()})
    model = build.model(config, spec)
    try:
        model.load_state_dict(checkpoints.plain_keys(state["model"]))  # also from a compiled or distributed run
    except RuntimeError as e:
        raise DlxError(f"{run.checkpoint(which)}: its weights do not fit this run's model "
                       f"({str(e).splitlines()[0][:160]})") from None
    return model.eval(), Vocab(spec.class_names), config


def check(options: Options) -> None:
    if options.strategy == "beam" and options.num_samples > 1:
        raise DlxError("--num-samples: beam search returns its one best beam; use --strategy sample for several")


def generate(run_path: str | Path, options: Options, write: Callable[[str], None] = lambda text: None,
             note: Callable[[str], None] = lambda text: None) -> list[Sample]:
    """Samples from a run; `write` receives each sample's text as it is produced, `note` one-line remarks."""
    check(options)
    model, vocab, config = load_language_model(run_path, options.checkpoint)
    if options.threads is None:
        threads.choose(config.train.threads, None)
    else:  # auto times one new character's forward pass, the work of each step of generation
        note(threads.choose(options.threads, threads.forward_probe(model, torch.zeros(1, 1, dtype=torch.long))).line())
    prompt_text = vocab.default_prompt if options.prompt is None else options.prompt
    if not prompt_text:
        raise DlxError("--prompt: give at least one character (or leave it out to start from a newline)")
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
            pieces.append(vocab.chars[token])
            write(pieces[-1])
        samples.append(Sample("".join(pieces)))
    return samples
