"""Which triplets of a batch a triplet loss trains on, and the squared distances they are judged by.

d(x1, x2) = ||f(x1) - f(x2)||^2 as the notes write it. A triplet (a, p, n) is easy when d(a, n) >= d(a, p) + alpha
(its loss is 0), hard when the negative is closer than the positive, d(a, n) < d(a, p), and semi-hard in between,
d(a, p) < d(a, n) < d(a, p) + alpha. Mining looks at the distances only (no gradient flows through the choice); the
loss is then computed on the chosen triplets. Each miner returns (anchor, positive, negative, valid): indices into the
batch, one entry per triplet, and which of them are real triplets (an anchor without a positive or without a
negative in the batch has none); the caller averages over the valid ones.
"""
from __future__ import annotations

import torch
from torch import Tensor

Triplets = tuple[Tensor, Tensor, Tensor, Tensor]


def squared_distances(embeddings: Tensor) -> Tensor:
    """(B, D) -> (B, B): d(x_i, x_j) for every pair, differentiable (zero on the diagonal, with a zero gradient)."""
    return (embeddings[:, None] - embeddings[None]).pow(2).sum(-1)


def _masks(labels: Tensor) -> tuple[Tensor, Tensor]:
    """(positive, negative) pair masks: same class and not the anchor itself; another class."""
    same = labels[:, None] == labels[None]
    itself = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~itself, ~same


@torch.no_grad()
def batch_hard(dist: Tensor, labels: Tensor) -> Triplets:
    """Every example is an anchor, with its farthest positive and its nearest negative (Hermans et al. 2017)."""
    positives, negatives = _masks(labels)
    positive = dist.masked_fill(~positives, -1.0).argmax(1)
    negative = dist.masked_fill(~negatives, float("inf")).argmin(1)
    anchor = torch.arange(len(labels), device=labels.device)
    return anchor, positive, negative, positives.any(1) & negatives.any(1)


@torch.no_grad()
def semi_hard(dist: Tensor, labels: Tensor) -> Triplets:
    """Every (anchor, positive) pair, with the nearest negative farther from the anchor than the positive: a
    semi-hard one when it lies within the margin, else the easy triplet closest to it (FaceNet, Schroff et al.
    2015). Where every negative is closer than the positive, the farthest negative (the least hard) is taken, as
    TensorFlow Addons' triplet_semihard_loss does: hard negatives alone can collapse f to a point, the notes warn.
    O(B^2 log B): each anchor's negatives are sorted once and searched for every positive."""
    positives, negatives = _masks(labels)
    negative_dist, order = dist.masked_fill(~negatives, float("inf")).sort(1)  # (B, B): each anchor's negatives first
    count = negatives.sum(1, keepdim=True)  # (B, 1)
    beyond = torch.searchsorted(negative_dist, dist.contiguous(), right=True)  # first negative with d(a,n) > d(a,p)
    farthest = (count - 1).clamp_min(0).expand_as(beyond)
    chosen = torch.where(beyond < count, beyond, farthest)
    anchor, positive = positives.nonzero(as_tuple=True)
    negative = order.gather(1, chosen)[anchor, positive]
    return anchor, positive, negative, count[anchor, 0] > 0


MINERS = {"batch_hard": batch_hard, "semi_hard": semi_hard}
