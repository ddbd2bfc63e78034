"""Word vectors learned by one run start another model's token embedding (`model.embedding_from: runs/<run>`), as the
notes' transfer learning: frozen (`model.embedding_freeze: true`) or fine-tuned with the rest of the model.

A model offers its token embedding as `token_embedding` (word2vec's E, a language model's input embedding); the two
runs must share the vocabulary, token for token (the same text and data.tokenizer, min_count, max_vocab), and the
width. A GPT ties its output layer to its token embedding, so freezing one freezes the other.
"""
from __future__ import annotations

import torch
from torch import nn

from dlx.data.base import DataSpec
from dlx.errors import DlxError
from dlx.run.trained import open_trained

SETTING = "model.embedding_from"


def token_embedding(model: nn.Module, name: str, what: str) -> nn.Embedding:
    embedding = getattr(model, "token_embedding", None)
    if not isinstance(embedding, nn.Embedding):
        raise DlxError(f"{SETTING}: {what} '{name}' has no token embedding (word2vec, char_rnn, char_lstm, char_gru "
                       f"and gpt have one)")
    return embedding


def start_embedding(model: nn.Module, section, spec: DataSpec, load: bool = True) -> None:
    """Copy the vectors of the run `section.embedding_from` names into `model`'s token embedding (unless `load` is
    False: a resumed run takes its weights from its checkpoint) and freeze them if asked."""
    if section.embedding_from is None:
        if section.embedding_freeze:
            raise DlxError("model.embedding_freeze: there is no pretrained embedding to freeze; set "
                           "model.embedding_from: runs/<run> as well")
        return
    target = token_embedding(model, section.name, "model")
    if load:
        with torch.no_grad():
            target.weight.copy_(pretrained_vectors(section.embedding_from, spec, target.embedding_dim))
    if section.embedding_freeze:
        target.weight.requires_grad_(False)


def pretrained_vectors(source: str, spec: DataSpec, width: int) -> torch.Tensor:
    """(V, width) the token embedding of the run at `source`, checked against this data's vocabulary and the width."""
    threads = torch.get_num_threads()  # opening a run sets the threads it trained with; this run keeps its own
    try:
        trained = open_trained(source, "best", device="cpu")
    except DlxError as e:
        raise DlxError(f"{SETTING}: {e}") from None
    finally:
        torch.set_num_threads(threads)
    vectors = token_embedding(trained.model, trained.config.model.name, f"{source}'s model").weight.detach()
    theirs, ours = trained.spec, spec
    if (theirs.tokenizer, theirs.class_names) != (ours.tokenizer, ours.class_names):
        raise DlxError(f"{SETTING}: {source} has a vocabulary of {len(theirs.class_names)} {theirs.tokenizer}, this "
                       f"data {len(ours.class_names)} {ours.tokenizer}{_first_difference(theirs, ours)}; train both "
                       f"on the same text with the same data.tokenizer, min_count and max_vocab")
    if vectors.shape[1] != width:
        raise DlxError(f"{SETTING}: {source}'s vectors have width {vectors.shape[1]}, this model's token embedding "
                       f"{width}; give the model an embedding of width {vectors.shape[1]}")
    return vectors


def _first_difference(theirs: DataSpec, ours: DataSpec) -> str:
    for i, (a, b) in enumerate(zip(theirs.class_names, ours.class_names)):
        if a != b:
            return f" (token {i} is {a!r} there, {b!r} here)"
    return ""
