"""Checks that a model can take a dataset, with errors that say what would fit."""
from __future__ import annotations

import torch
from torch import nn

from dlx.data.base import CLASSIFICATION, LANGUAGE, DataSpec, Splits
from dlx.errors import DlxError
from dlx.models.modes import evaluating


def image_shape(spec: DataSpec, model: str) -> tuple[int, int, int]:
    """(C, H, W) of the data's images, or a DlxError for tables and sequences."""
    if not spec.is_image:
        raise DlxError(f"model '{model}' needs images (C, H, W), but the data has samples of shape {spec.in_shape}; "
                       f"choose a model for this data (mlp for tables, rnn/lstm/gru for sequences)")
    return spec.in_shape  # type: ignore[return-value]


def sequence_shape(spec: DataSpec, model: str) -> tuple[int, int]:
    """(T, F) of the data's sequences, or a DlxError for tables and images."""
    if len(spec.in_shape) != 2:
        raise DlxError(f"model '{model}' needs sequences of shape (T, F), but the data has samples of shape "
                       f"{spec.in_shape}; choose mlp for tables or a CNN for images")
    return spec.in_shape  # type: ignore[return-value]


def classifier_outputs(spec: DataSpec, model: str) -> int:
    if spec.num_outputs < 1:
        raise DlxError(f"model '{model}' predicts labels or targets, but this {spec.task} data has none; "
                       f"choose an autoencoder for reconstruction")
    return spec.num_outputs


def feature_shape(features: nn.Module, in_shape: tuple[int, ...], model: str, minimum: str) -> torch.Size:
    """The shape of one sample after `features`, found by a dry run on zeros; too small an image is a DlxError."""
    try:
        with evaluating(features):  # batch norm cannot take one sample in training mode
            return features(torch.zeros(1, *in_shape)).shape[1:]
    except RuntimeError:
        raise DlxError(f"model '{model}': a {in_shape[-2]}x{in_shape[-1]} image is too small for its convolutions "
                       f"and poolings (it needs at least {minimum}); choose a model for small images, e.g. cnn") from None


def check_targets(model: nn.Module, data: Splits, name: str) -> None:
    """One forward pass on two training examples: the outputs must fit the targets, else a DlxError says how."""
    spec = data.spec
    if spec.task == LANGUAGE:  # text windows are drawn at random: its models check their own sizes
        return
    x, y = data.first("train", 2)
    with evaluating(model):
        got = tuple(model(x).shape[1:])
    per_example = tuple(y.shape[1:])
    expected = (spec.num_classes, *per_example) if spec.task == CLASSIFICATION else per_example
    if got == expected:
        return
    hint = ""
    if spec.task == CLASSIFICATION and per_example:
        hint = "; these labels are per step: use a model with a prediction per step (rnn, lstm, gru with output: steps)"
    elif spec.task == CLASSIFICATION and len(got) > 1:
        hint = "; these labels are one per example: use output: last or mean"
    raise DlxError(f"model '{name}' gives outputs of shape {got} per example, but the {spec.task} targets need "
                   f"{expected}{hint}")
