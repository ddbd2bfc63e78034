"""A committee of trained networks (the course's committee of 5 MNIST nets): members that were trained on the
same data and split answer together, by majority vote or by averaging their probabilities."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from dlx.data.base import CLASSIFICATION
from dlx.errors import DlxError
from dlx.run.trained import Trained, open_trained

Mode = Literal["vote", "mean"]
MODES = ("vote", "mean")


def split_of(trained: Trained, split: str) -> dict:
    """What fixes a run's examples in `split`: its data section and the seed the split was drawn with. The folds
    of a cross-validation share their test split, so on it they make a committee; bagging's members share every
    split but the train split each resamples."""
    data = trained.config.data
    varies = {"split_seed"} | ({"fold"} if split == "test" else set()) | ({"bag"} if split != "train" else set())
    return {"data": data.model_dump(mode="json", exclude=varies),
            "split seed": trained.config.seed if data.split_seed is None else data.split_seed}


def open_runs(paths: list[Path], ensemble: Mode | None, which: str, data_overrides: list[str], split: str, command: str,
              device: str | None = None) -> list[Trained]:
    """The one run given (ensemble None) or the members of a committee, each trained with the supervised objective."""
    if ensemble is None:
        if len(paths) > 1:
            raise DlxError(f"{len(paths)} runs given: {command} them as a committee with --ensemble vote or --ensemble mean")
        trained = open_trained(paths[0], which, data_overrides, device)
        trained.require_objective("supervised", f"dlx {command}")
        return [trained]
    if ensemble not in MODES:
        raise DlxError(f"--ensemble '{ensemble}': choose vote or mean")
    if len(paths) < 2:
        raise DlxError("--ensemble: a committee needs two or more runs")
    return load_members(paths, which, data_overrides, split, device)


def load_members(paths: list[Path], which: str, data_overrides: list[str], split: str,
                 device: str | None = None) -> list[Trained]:
    """Every member, or a DlxError naming the first one whose data or split differs from the first member's."""
    if len(set(map(Path.resolve, map(Path, paths)))) < len(paths):
        raise DlxError("a committee member is listed twice; give each run once")
    members = [open_trained(path, which, data_overrides, device) for path in paths]
    for member in members:
        member.require_objective("supervised", "a committee")
    first = split_of(members[0], split)
    for member in members[1:]:
        other = split_of(member, split)
        for key in first:
            if other[key] != first[key]:
                raise DlxError(f"{member.run.path} and {members[0].run.path} differ in their {key} "
                               f"({_difference(first[key], other[key])}); committee members must be trained on the same "
                               f"data and split: vary `seed` and keep data.split_seed, e.g. --set data.split_seed=0")
    return members


def _difference(a, b) -> str:
    if isinstance(a, dict):
        keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        return ", ".join(f"data.{k}: {a.get(k)} vs {b.get(k)}" for k in keys)
    return f"{a} vs {b}"


def combine(outputs: list[Tensor], mode: Mode, task: str) -> Tensor:
    """The committee's answer from its members' outputs (M tensors of (N, C) probabilities or (N, k) values).

    mean: the average probability (or, for regression, the average output).
    vote: each member votes for its most probable class; a tie goes to the class with the larger mean
    probability, which adds less than one vote. The scores are scaled to sum to 1 like probabilities.
    Regression has no classes to vote for: the committee averages (as the course's regression committees do).
    """
    stacked = torch.stack(outputs)  # (M, N, C)
    mean = stacked.mean(dim=0)  # (N, C)
    if mode == "mean" or task != CLASSIFICATION:
        return mean
    votes = F.one_hot(stacked.argmax(dim=-1), stacked.shape[-1]).sum(dim=0).float()  # (N, C)
    return (votes + 0.5 * mean) / (len(outputs) + 0.5)
