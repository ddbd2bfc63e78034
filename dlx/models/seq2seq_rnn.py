"""A recurrent encoder-decoder (GRU or LSTM) with Bahdanau's, Luong's or no attention.

The encoder (bidirectional by default, as Bahdanau's) reads the source into states h_j. The decoder produces one
token at a time from its state s_i, as the course writes it for Bahdanau's model:
    s_0 = tanh(W_s h_1)          h_1: the first encoder state, whose backward half has read the whole source
    e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j),  alpha_i = softmax(e_i),  c_i = sum_j alpha_ij h_j
    s_i = g(y_{i-1}, s_{i-1}, c_i)             g: a GRU (or LSTM) cell reading [E y_{i-1}; c_i]
    P(y_i | x, y_<i) = softmax(W_o s_i + C_o c_i + U_o E y_{i-1})
Luong's attention scores with the new state instead: s_i = g(y_{i-1}, s_{i-1}), e_ij = s_i^T W_a h_j, and
P(y_i) = softmax(W_s tanh(W_c [c_i; s_i])). Without attention the decoder starts from the encoder's final state,
s_0 = tanh(W_s [h->_S; h<-_1]), and must carry the whole source in it: P(y_i) = softmax(W_o s_i + U_o E y_{i-1}).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dlx.data.base import SEQ2SEQ, DataSpec
from dlx.data.sequence_pairs import PAD_ID
from dlx.models.attention import AdditiveAttention, MultiplicativeAttention
from dlx.models.encoder_decoder import DecoderState, teacher_forced, vocab_sizes
from dlx.models.mlp import Dropout
from dlx.registry import models

Width = Annotated[int, Field(ge=1, le=16384)]
RNNS = {"gru": (nn.GRU, nn.GRUCell), "lstm": (nn.LSTM, nn.LSTMCell)}


@dataclass
class Seq2SeqRNNConfig:
    cell: Literal["gru", "lstm"] = "gru"
    attention: Literal["bahdanau", "luong", "none"] = "bahdanau"
    embedding: Width = 64  # size of a token's vector, on each side
    hidden: Width = 128  # units of the decoder, and of each direction of the encoder
    attention_size: Width | None = None  # width of Bahdanau's v_a (None: hidden)
    bidirectional: bool = True  # the encoder reads the source both ways, so every h_j sees all of it
    dropout: Dropout = 0.0  # on the embeddings and before the output layer


class Seq2SeqRNN(nn.Module):
    max_length = None  # a recurrent decoder takes any number of steps

    def __init__(self, spec: DataSpec, config: Seq2SeqRNNConfig):
        super().__init__()
        source_vocab, target_vocab = vocab_sizes(spec, "seq2seq_rnn")
        rnn, cell = RNNS[config.cell]
        self.attention_kind, self.lstm, self.bidirectional = config.attention, config.cell == "lstm", config.bidirectional
        self.has_attention = config.attention != "none"
        memory = config.hidden * (2 if config.bidirectional else 1)  # the size of each h_j
        self.source_embed = nn.Embedding(source_vocab, config.embedding, padding_idx=PAD_ID)
        self.encoder = rnn(config.embedding, config.hidden, batch_first=True, bidirectional=config.bidirectional)
        self.target_embed = nn.Embedding(target_vocab, config.embedding, padding_idx=PAD_ID)
        self.bridge = nn.Linear(memory, config.hidden)  # W_s
        self.drop = nn.Dropout(config.dropout)
        if config.attention == "bahdanau":
            self.attention = AdditiveAttention(config.hidden, memory, config.attention_size or config.hidden)
            self.cell = cell(config.embedding + memory, config.hidden)
            self.out = nn.Linear(config.hidden + memory + config.embedding, target_vocab)  # W_o s + C_o c + U_o E y
        elif config.attention == "luong":
            self.attention = MultiplicativeAttention(config.hidden, memory)
            self.cell = cell(config.embedding, config.hidden)
            self.combine = nn.Linear(memory + config.hidden, config.hidden)  # W_c
            self.out = nn.Linear(config.hidden, target_vocab)  # W_s
        else:
            self.attention = None
            self.cell = cell(config.embedding, config.hidden)
            self.out = nn.Linear(config.hidden + config.embedding, target_vocab)  # W_o s + U_o E y

    def encode(self, src: Tensor) -> DecoderState:
        """(B, S) source ids -> the decoder's starting state, with the encoder states it attends to."""
        mask = src != PAD_ID  # (B, S)
        lengths = mask.sum(dim=1).clamp_min(1).cpu()  # packing stops each direction at the source's true end
        packed = pack_padded_sequence(self.drop(self.source_embed(src)), lengths, batch_first=True, enforce_sorted=False)
        out, final = self.encoder(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])  # (B, S, D*H): the h_j
        if self.attention_kind == "bahdanau" and self.bidirectional:
            start = memory[:, 0]  # the notes' h_1
        else:  # the final state of each direction (forward at the end, backward at the start): a one-way encoder's
            # h_1 has read only the first token, its last state is what has read them all
            h = final[0] if self.lstm else final  # (D, B, H)
            start = h.transpose(0, 1).flatten(1)  # (B, D*H)
        s = torch.tanh(self.bridge(start))  # s_0: (B, H)
        state = (s, torch.zeros_like(s)) if self.lstm else s  # an LSTM's memory cell starts empty
        keys = self.attention.keys(memory) if self.attention is not None else memory
        return DecoderState(s=state, memory=memory, keys=keys, mask=mask)

    def step(self, state: DecoderState, token: Tensor) -> tuple[Tensor, Tensor | None]:
        """(B,) previous tokens -> (B, V) logits of the next and (B, S) attention weights; `state` moves on."""
        e = self.drop(self.target_embed(token))  # E y_{i-1}: (B, emb)
        previous = state.s[0] if self.lstm else state.s  # s_{i-1}: (B, H)
        weights = None
        if self.attention_kind == "bahdanau":
            context, weights = self.attention(previous, state.memory, state.keys, state.mask)  # c_i from s_{i-1}
            state.s = self.cell(torch.cat([e, context], dim=1), state.s)
            s = state.s[0] if self.lstm else state.s
            features = torch.cat([s, context, e], dim=1)
        elif self.attention_kind == "luong":
            state.s = self.cell(e, state.s)
            s = state.s[0] if self.lstm else state.s
            context, weights = self.attention(s, state.memory, state.keys, state.mask)  # c_i from s_i
            features = torch.tanh(self.combine(torch.cat([context, s], dim=1)))
        else:
            state.s = self.cell(e, state.s)
            features = torch.cat([state.s[0] if self.lstm else state.s, e], dim=1)
        return self.out(self.drop(features)), weights

    def forward(self, src: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0) -> Tensor:
        """(B, S) sources and (B, T) decoder inputs (<s> and the target but its last token) -> (B, T, V) logits.
        Below 1, teacher_forcing feeds the model's own previous prediction in place of the true token that often."""
        state = self.encode(src)
        fed = teacher_forced(tgt_in, teacher_forcing) if teacher_forcing < 1.0 else None
        logits = []
        token = tgt_in[:, 0]
        for i in range(tgt_in.shape[1]):
            if i:
                token = tgt_in[:, i] if fed is None else torch.where(fed[:, i], tgt_in[:, i], logits[-1].argmax(-1))
            logits.append(self.step(state, token)[0])
        return torch.stack(logits, dim=1)  # (B, T, V)


models.register("seq2seq_rnn", "recurrent encoder-decoder (GRU or LSTM) with attention: bahdanau (additive), luong "
                "(multiplicative) or none", config=Seq2SeqRNNConfig, task=SEQ2SEQ, objective="seq2seq")(Seq2SeqRNN)
