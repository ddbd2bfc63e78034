"""A GPT in nanoGPT's style: a stack of transformer blocks trained to predict the next character.

Token and position embeddings (learned, or the course's sinusoidal table) -> blocks of
(LayerNorm, causal multi-head attention, residual; LayerNorm, MLP, residual) -> LayerNorm -> logits,
with the output layer sharing the token embedding's weights. `forward(idx, cache)` with a KVCache
reads only the new tokens and attends to the keys and values stored for the earlier ones.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from dlx.data.base import LANGUAGE, DataSpec
from dlx.data.text import vocab_size
from dlx.errors import DlxError
from dlx.registry import models


@dataclass
class GPTConfig:
    layers: Annotated[int, Field(ge=1, le=128)] = 4
    heads: Annotated[int, Field(ge=1, le=128)] = 4
    width: Annotated[int, Field(ge=1, le=16384)] = 128  # embedding size C, a multiple of heads
    block_size: Annotated[int, Field(ge=1)] | None = None  # the longest context; None: data.block_size
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    positions: Literal["learned", "sinusoidal"] = "learned"
    bias: bool = False  # biases in Linear and LayerNorm layers; without them nanoGPT trains a little better and faster
    tie_weights: bool = True  # the output layer reuses the token embedding: fewer parameters, better small models


def sinusoidal_positions(n: int, d: int) -> Tensor:
    """The course's table P[k, 2i] = sin(k / 10000^(2i/d)), P[k, 2i+1] = cos(k / 10000^(2i/d)): (n, d)."""
    k = torch.arange(n, dtype=torch.float64)[:, None]  # (n, 1)
    two_i = torch.arange(0, d, 2, dtype=torch.float64)  # (ceil(d/2),)
    angle = k / 10000 ** (two_i / d)  # (n, ceil(d/2))
    table = torch.zeros(n, d, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d // 2])  # an odd d has one more sine column than cosines
    return table.float()


class SinusoidalPositions(nn.Module):
    def __init__(self, n: int, d: int):
        super().__init__()
        self.register_buffer("table", sinusoidal_positions(n, d), persistent=False)  # fixed: not in checkpoints

    def forward(self, pos: Tensor) -> Tensor:
        return self.table[pos]


class LayerCache:
    """Keys and values of one attention layer for the tokens read so far: (B, H, T, C/H) each."""

    def __init__(self):
        self.k: Tensor | None = None
        self.v: Tensor | None = None

    def extend(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if self.k is not None:
            k, v = torch.cat([self.k, k], dim=2), torch.cat([self.v, v], dim=2)
        self.k, self.v = k, v
        return k, v


class KVCache:
    """What a GPT keeps between generation steps so that each new token costs one position, not the window."""

    def __init__(self, layers: int):
        self.layers = [LayerCache() for _ in range(layers)]

    @property
    def length(self) -> int:
        first = self.layers[0].k
        return 0 if first is None else first.shape[2]

    def reorder(self, index: Tensor) -> None:
        """Keep sequence index[i] as sequence i (beam search)."""
        for layer in self.layers:
            if layer.k is not None:
                layer.k, layer.v = layer.k[index], layer.v[index]


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.heads, self.dropout = config.heads, config.dropout
        self.qkv = nn.Linear(config.width, 3 * config.width, bias=config.bias)  # all heads' q, k, v in one matmul
        self.proj = nn.Linear(config.width, config.width, bias=config.bias)
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, cache: LayerCache | None = None) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, H, T, C/H)
        past = 0 if cache is None or cache.k is None else cache.k.shape[2]
        if cache is not None:
            k, v = cache.extend(k, v)  # (B, H, past + T, C/H)
        dropout = self.dropout if self.training else 0.0
        if past == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        elif T == 1:  # one new token: every cached key is in its past
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        else:  # query i sits at position past + i and may see keys 0 .. past + i
            mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.up = nn.Linear(config.width, 4 * config.width, bias=config.bias)
        self.down = nn.Linear(4 * config.width, config.width, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.down(F.gelu(self.up(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.width, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.width, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: Tensor, cache: LayerCache | None = None) -> Tensor:
        x = x + self.attn(self.ln1(x), cache)  # pre-norm residuals keep a clean path for the gradient
        return x + self.mlp(self.ln2(x))


@models.register("gpt", "character GPT (nanoGPT style): causal self-attention blocks, learned or sinusoidal "
                 "positions, tied output weights", config=GPTConfig, task=LANGUAGE)
class GPT(nn.Module):
    def __init__(self, spec: DataSpec, config: GPTConfig):
        super().__init__()
        vocab = vocab_size(spec, "gpt")
        if config.width % config.heads:
            raise DlxError(f"model.width={config.width} is not a multiple of model.heads={config.heads}")
        window = spec.in_shape[0]
        self.max_context = config.block_size or window
        if self.max_context < window:
            raise DlxError(f"model.block_size={config.block_size} is shorter than data.block_size={window}")
        self.tok = nn.Embedding(vocab, config.width)
        self.pos = (nn.Embedding(self.max_context, config.width) if config.positions == "learned"
                    else SinusoidalPositions(self.max_context, config.width))
        # The sinusoidal table has amplitude 1 while token embeddings start at std 0.02: added unscaled, the
        # positions drown the tokens and the model stalls at the unigram loss. The transformer paper's way
        # (Vaswani et al. 2017, 3.4): multiply the token embeddings by sqrt(d_model). Learned positions start at
        # the tokens' scale and are left as they are.
        self.token_scale = math.sqrt(config.width) if config.positions == "sinusoidal" else None
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.ln_f = nn.LayerNorm(config.width, bias=config.bias)
        self.head = nn.Linear(config.width, vocab, bias=False)
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith(("proj.weight", "down.weight")):  # GPT-2: each residual branch adds variance; scale it down
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.layers))
        if config.tie_weights:
            self.head.weight = self.tok.weight

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    @property
    def token_embedding(self) -> nn.Embedding:
        return self.tok

    def new_cache(self) -> KVCache:
        return KVCache(len(self.blocks))

    def forward(self, idx: Tensor, cache: KVCache | None = None) -> Tensor:
        B, T = idx.shape
        past = 0 if cache is None else cache.length
        pos = torch.arange(past, past + T, device=idx.device)  # (T,) absolute positions after the cached ones
        tokens = self.tok(idx)  # (B, T, C)
        if self.token_scale is not None:
            tokens = tokens * self.token_scale
        x = self.drop(tokens + self.pos(pos))  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, None if cache is None else cache.layers[i])
        return self.head(self.ln_f(x))  # (B, T, vocab)
