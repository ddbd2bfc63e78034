"""Samples while a model trains (samples.every): a language model's text to TensorBoard's text tab (and to the
terminal on request), a generative model's grid of images from a fixed batch of noise to its images tab."""
from __future__ import annotations

import torch
from rich.console import Console
from torch import nn

from dlx.config import SamplesSection
from dlx.data.base import LANGUAGE, DataSpec, Standardizer
from dlx.data.text import vocab_of
from dlx.errors import DlxError
from dlx.judge import is_generative
from dlx.models.decode import sample
from dlx.models.modes import evaluating
from dlx.sample_grid import fixed_noise, sample_grid


def sampler(settings: SamplesSection, spec: DataSpec, seed: int, model: nn.Module,
            standardizer: Standardizer | None) -> TextSampler | ImageSampler:
    """What samples.every draws for this model: images for a generative model of images, text for a language model."""
    if is_generative(model):
        if not spec.is_image:
            raise DlxError(f"samples.every: a generative model's samples are drawn as images, and this data has "
                           f"samples of shape {spec.in_shape}")
        return ImageSampler(settings, model, seed, standardizer)
    if spec.task != LANGUAGE:
        raise DlxError(f"samples.every: samples come from a language model on text data or a generative model "
                       f"(mlp_gan, dcgan, mlp_vae), not a model of {spec.task} data")
    return TextSampler(settings, spec, seed)


class ImageSampler:
    """The same noise decoded at every call: the grid shows the same samples improving."""

    def __init__(self, settings: SamplesSection, model: nn.Module, seed: int, standardizer: Standardizer | None):
        self.noise, self.standardizer = fixed_noise(model, settings.grid, seed), standardizer

    def __call__(self, writer, model: nn.Module, step: int, console: Console) -> None:
        writer.add_image("samples", sample_grid(model, self.noise, self.standardizer), step)


class TextSampler:
    def __init__(self, settings: SamplesSection, spec: DataSpec, seed: int):
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
