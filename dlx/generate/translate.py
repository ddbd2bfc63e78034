"""`dlx generate RUN --input TEXT`: an encoder-decoder's output for each input, streamed as greedy decoding chooses
it (beam search prints its best candidate when the search ends), and its attention as a heat map PNG, written to
the current folder as <run>-attention.png (<run>-attention-<k>.png for the k-th of several inputs)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from dlx import threads
from dlx.data.sequence_pairs import BOS_ID, vocabularies
from dlx.errors import DlxError
from dlx.generate.run import Options, Sample
from dlx.models.seq2seq_decode import beam_search, greedy_stream
from dlx.config import load as load_config
from dlx.run.folder import Run
from dlx.run.trained import Trained, open_trained


def check(options: Options) -> None:
    """Refuse what an encoder-decoder cannot do, before anything is decoded."""
    if options.prompt is not None:
        raise DlxError("--prompt continues a language model's text; this run translates: give --input TEXT")
    if not options.inputs:
        raise DlxError("this run translates: give the text with --input TEXT (repeatable)")
    if options.strategy == "sample":
        raise DlxError("--strategy sample draws from a language model; this run translates with greedy (the default) "
                       "or beam")
    if not all(options.inputs):
        raise DlxError("--input: give at least one character to translate")


def heat_map_path(run: Trained, k: int, inputs: int) -> Path:
    return Path(f"{run.run.name}-attention{'' if inputs == 1 else f'-{k}'}.png")


def translates(run_path: str | Path) -> bool:
    """Whether a run is an encoder-decoder's, by its config (no checkpoint read)."""
    return load_config(Run.open(run_path).config_path).objective.name == "seq2seq"


def translate(run_path: str | Path, options: Options, write: Callable[[str], None],
              note: Callable[[str], None]) -> list[Sample]:
    """Each input's output, written as it is produced; the heat maps of models with attention."""
    from dlx import plots  # matplotlib only here, not for language models

    check(options)
    trained = open_trained(run_path, options.checkpoint, device="cpu")  # with the run's thread count
    model, (source_vocab, target_vocab) = trained.model, vocabularies(trained.spec)
    sources = [torch.tensor(source_vocab.encode(text, "--input"), device=trained.device) for text in options.inputs]
    if options.threads is not None:  # auto times one decoder step on the first input
        bos = torch.full((1, 1), BOS_ID, dtype=torch.long, device=trained.device)
        note(threads.choose(options.threads, threads.forward_probe(model, (sources[0][None], bos))).line())
    steps = options.max_new_tokens
    if model.max_length is not None:
        for text, src in zip(options.inputs, sources):
            if len(src) > model.max_length:
                raise DlxError(f"--input {text[:40]!r}: {len(src)} characters, more than the model's positions "
                               f"(model.max_length={model.max_length})")
        if steps > model.max_length:
            note(f"--max-new-tokens {steps}: the model's positions end at {model.max_length} tokens; stopping there")
            steps = model.max_length
    if not model.has_attention:  # before the outputs, which stream
        note(f"this {trained.config.model.name} has no attention (model.attention=none): no heat map")
    samples = []
    for k, (text, src) in enumerate(zip(options.inputs, sources), start=1):
        if k > 1:
            write("\n")
        if options.strategy == "beam":
            beam = beam_search(model, src, steps, options.beam_width)
            tokens, attention, log_prob = beam.tokens, beam.attention, beam.log_prob
            write(target_vocab.decode(tokens))
        else:
            tokens, rows = [], []
            for token, weights in greedy_stream(model, src, steps):
                tokens.append(token)
                rows.append(weights)
                write(target_vocab.decode([token]))
            attention = torch.stack(rows).cpu() if rows and rows[0] is not None else None
            log_prob = None
        output = target_vocab.decode(tokens)
        samples.append(Sample(output, log_prob))
        if not tokens:
            note(f"input {k}: the output is empty, so is its heat map; none written")
            continue
        if attention is None:
            continue
        path = heat_map_path(trained, k, len(options.inputs))
        figure = plots.attention_figure(attention.numpy(), list(text), list(output),
                                        f"{trained.run.name}: {text!r} -> {output!r}")
        samples[-1].figure = plots.save(figure, path, dpi=120)  # told after the outputs, not amid them
    return samples
