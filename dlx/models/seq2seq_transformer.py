"""A small transformer encoder-decoder (Vaswani et al. 2017), pre-norm.

Source and target tokens are embedded (times sqrt(width), as the paper does, so the course's sinusoidal positions
do not drown them) and given those positions. The encoder is torch's TransformerEncoder; each decoder layer is
written out (causal self-attention, cross-attention to the encoder, feed-forward) so that its cross-attention
weights can be read for the heat map: the last layer's, averaged over heads.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn

from dlx.data.base import SEQ2SEQ, DataSpec
from dlx.data.sequence_pairs import PAD_ID
from dlx.errors import DlxError
from dlx.models.encoder_decoder import DecoderState, teacher_forced, vocab_sizes
from dlx.models.gpt import sinusoidal_positions
from dlx.models.mlp import Dropout
from dlx.registry import models

Layers = Annotated[int, Field(ge=1, le=64)]


@dataclass
class Seq2SeqTransformerConfig:
    width: Annotated[int, Field(ge=1, le=16384)] = 64  # model size, a multiple of heads
    heads: Annotated[int, Field(ge=1, le=128)] = 4
    encoder_layers: Layers = 2
    decoder_layers: Layers = 2
    feedforward: Annotated[int, Field(ge=1)] | None = None  # inner width of each feed-forward block; None: 4 * width
    dropout: Dropout = 0.1
    max_length: Annotated[int, Field(ge=2, le=100_000)] = 512  # the longest source or output the positions cover


class DecoderLayer(nn.Module):
    def __init__(self, width: int, heads: int, feedforward: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.self_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(width, feedforward), nn.GELU(), nn.Dropout(dropout),
                                nn.Linear(feedforward, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, memory: Tensor, source_pad: Tensor, causal: Tensor) -> tuple[Tensor, Tensor]:
        h = self.ln1(x)
        x = x + self.drop(self.self_attn(h, h, h, attn_mask=causal, need_weights=False)[0])
        h = self.ln2(x)
        attended, weights = self.cross_attn(h, memory, memory, key_padding_mask=source_pad)  # weights: (B, T, S)
        x = x + self.drop(attended)
        return x + self.drop(self.ff(self.ln3(x))), weights


class Seq2SeqTransformer(nn.Module):
    has_attention = True  # the decoder's cross-attention
    def __init__(self, spec: DataSpec, config: Seq2SeqTransformerConfig):
        super().__init__()
        source_vocab, target_vocab = vocab_sizes(spec, "seq2seq_transformer")
        if config.width % config.heads:
            raise DlxError(f"model.width={config.width} is not a multiple of model.heads={config.heads}")
        if spec.in_shape[0] > config.max_length:
            raise DlxError(f"the sources are up to {spec.in_shape[0]} tokens long, more than model.max_length="
                           f"{config.max_length}; raise it")
        self.max_length, self.scale = config.max_length, math.sqrt(config.width)
        feedforward = config.feedforward or 4 * config.width
        self.source_embed = nn.Embedding(source_vocab, config.width, padding_idx=PAD_ID)
        self.target_embed = nn.Embedding(target_vocab, config.width, padding_idx=PAD_ID)
        self.register_buffer("positions", sinusoidal_positions(config.max_length, config.width), persistent=False)
        self.drop = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(config.width, config.heads, feedforward, config.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        # nested tensors are a fast path of post-norm layers only; asked for with pre-norm they only warn
        self.encoder = nn.TransformerEncoder(layer, config.encoder_layers, norm=nn.LayerNorm(config.width),
                                             enable_nested_tensor=False)
        self.decoder = nn.ModuleList(DecoderLayer(config.width, config.heads, feedforward, config.dropout)
                                     for _ in range(config.decoder_layers))
        self.ln_f = nn.LayerNorm(config.width)
        self.out = nn.Linear(config.width, target_vocab)

    def _embed(self, embedding: nn.Embedding, ids: Tensor) -> Tensor:
        return self.drop(embedding(ids) * self.scale + self.positions[: ids.shape[1]])  # (B, T, width)

    def encode(self, src: Tensor) -> DecoderState:
        source_pad = src == PAD_ID  # (B, S), True where attention must not look
        memory = self.encoder(self._embed(self.source_embed, src), src_key_padding_mask=source_pad)
        return DecoderState(memory=memory, source_pad=source_pad, tokens=src[:, :0])

    def decode(self, state: DecoderState, tgt_in: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T) decoder inputs -> (B, T, V) logits and the last layer's cross-attention (B, T, S)."""
        T = tgt_in.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=tgt_in.device).triu(1)  # True: a future position, hidden
        x = self._embed(self.target_embed, tgt_in)
        for layer in self.decoder:
            x, weights = layer(x, state.memory, state.source_pad, causal)
        return self.out(self.ln_f(x)), weights

    def step(self, state: DecoderState, token: Tensor) -> tuple[Tensor, Tensor]:
        """Reads the outputs so far again with the new one (short sequences: no key-value cache needed)."""
        state.tokens = torch.cat([state.tokens, token[:, None]], dim=1)
        logits, weights = self.decode(state, state.tokens)
        return logits[:, -1], weights[:, -1]

    def forward(self, src: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        state = self.encode(src)
        if teacher_forcing < 1.0:  # scheduled sampling in two passes (Mihaylova and Martins 2019): what the model
            with torch.no_grad():  # predicts from the true inputs replaces some of them
                predicted = self.decode(state, tgt_in)[0].argmax(-1)  # (B, T): its guess of tokens 1..T
            own = torch.cat([tgt_in[:, :1], predicted[:, :-1]], dim=1)  # the guess of token i, fed at step i
            tgt_in = torch.where(teacher_forced(tgt_in, teacher_forcing), tgt_in, own)
        return self.decode(state, tgt_in)[0]


models.register("seq2seq_transformer", "transformer encoder-decoder: pre-norm encoder and decoder layers, sinusoidal "
                "positions, cross-attention maps", config=Seq2SeqTransformerConfig, task=SEQ2SEQ,
                objective="seq2seq")(Seq2SeqTransformer)
