"""Text samples while a language model trains: to TensorBoard's text tab, and to the terminal on request."""
from __future__ import annotations

import torch
from rich.console import Console
from torch import nn

from dlx.config import SamplesSection
from dlx.data.base import LANGUAGE, DataSpec
from dlx.data.text import vocab_of
from dlx.errors import DlxError
from dlx.models.decode import sample
from dlx.models.modes import evaluating


class TextSampler:
    def __init__(self, settings: SamplesSection, spec: DataSpec, seed: int):
        if spec.task != LANGUAGE:
            raise DlxError(f"samples.every: text samples need a language model on text data, not {spec.task} data")
        self.settings, self.seed, self.vocab = settings, seed, vocab_of(spec)
        self.text = self.vocab.default_prompt if settings.prompt is None else settings.prompt
        try:
            self.prompt = self.vocab.encode(self.text)
        except DlxError as e:
            raise DlxError(f"samples.prompt: {e}") from None

    def __call__(self, writer, model: nn.Module, step: int, console: Console) -> None:
        device = next(model.parameters()).device
        # a generator of its own, seeded by the step: sampling leaves the training's random numbers untouched
        generator = torch.Generator(device=device).manual_seed(self.seed + step)
        with evaluating(model):
            ids = list(sample(model, self.prompt.to(device), self.settings.length, self.settings.temperature,
                              generator=generator))
        text = self.text + self.vocab.decode(ids)
        writer.add_text("samples", "    " + text.replace("\n", "\n    "), step)  # indented: markdown shows it verbatim
        if self.settings.terminal:
            console.rule(f"sample at step {step}")
            console.print(text, markup=False, highlight=False)
