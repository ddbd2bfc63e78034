"""Bits per character, the language models' metric: a torchmetrics Perplexity read in bits (its own module so
that dlx.metrics imports torchmetrics only when a metric is built)."""
from __future__ import annotations

import math

from torchmetrics.text import Perplexity


class BitsPerCharacter(Perplexity):
    """log2 of the perplexity: the mean negative log-likelihood per character in bits (nats / ln 2)."""

    def compute(self):
        return super().compute().log() / math.log(2)
