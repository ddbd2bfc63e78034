"""Retrieval measures of an embedding: each example is a query, every other example of the same set a candidate,
ranked by the squared distance d(x1, x2) = ||f(x1) - f(x2)||^2. A candidate of the query's class is relevant.

recall@k:      the fraction of queries with a relevant candidate among their k nearest (the metric-learning papers'
               Recall@K, not the classifier's per-class recall)
k-NN accuracy: the fraction of queries whose k nearest candidates vote for the query's class (ties go to the class
               whose votes are nearer)
mAP:           the mean over queries of the average precision of the whole ranking (a query alone in its class
               scores 0)

Queries go through in chunks so a split of 10,000 examples needs a few tens of MB, not its 10,000 x 10,000 matrix.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

CHUNK = 1024  # queries ranked at once


def _ranked(embeddings: Tensor, k: int | None):
    """(start, (c, k) indices of each chunk's nearest candidates, the query itself left out); k None: all of them."""
    n = len(embeddings)
    width = n - 1 if k is None else min(k, n - 1)
    for start in range(0, n, CHUNK):
        dist = torch.cdist(embeddings[start:start + CHUNK], embeddings).pow(2)  # (c, N)
        rows = torch.arange(len(dist), device=dist.device)
        dist[rows, rows + start] = float("inf")
        if k is None:
            yield start, dist.argsort(dim=1, stable=True)[:, :width]
        else:
            yield start, dist.topk(width, dim=1, largest=False, sorted=True).indices


def nearest(embeddings: Tensor, k: int) -> Tensor:
    """(N, k): each example's k nearest other examples, nearest first."""
    return torch.cat([idx for _, idx in _ranked(embeddings, k)])


def spread_queries(labels: Tensor, n: int) -> list[int]:
    """Up to n examples to show as queries, the classes in turn: the first example of each class, then the second..."""
    members = [torch.nonzero(labels == c).flatten().tolist() for c in labels.unique()]
    picked = [m[rank] for rank in range(max(map(len, members))) for m in members if rank < len(m)]
    return picked[:n]


def recall_at_k(embeddings: Tensor, labels: Tensor, k: int) -> Tensor:
    hits = (labels[nearest(embeddings, k)] == labels[:, None]).any(1)
    return hits.float().mean()


def knn_accuracy(embeddings: Tensor, labels: Tensor, k: int = 5) -> Tensor:
    neighbours = labels[nearest(embeddings, k)]  # (N, k)
    width = neighbours.shape[1]
    # one vote each, plus less than one vote in all for nearness: a tie goes to the class whose votes are nearer
    nearness = (width - torch.arange(width, device=labels.device)) / (width * (width + 1))
    classes = int(labels.max()) + 1
    votes = torch.zeros(len(labels), classes, device=labels.device).scatter_add_(
        1, neighbours, (1.0 + nearness).expand_as(neighbours).contiguous())
    return (votes.argmax(1) == labels).float().mean()


def mean_average_precision(embeddings: Tensor, labels: Tensor) -> Tensor:
    total = torch.zeros((), device=embeddings.device)
    for start, order in _ranked(embeddings, None):
        query = labels[start:start + len(order), None]
        relevant = (labels[order] == query).float()  # (c, N-1), nearest first
        hits = relevant.cumsum(1)
        precision = hits / torch.arange(1, relevant.shape[1] + 1, device=hits.device)
        total += ((precision * relevant).sum(1) / relevant.sum(1).clamp_min(1)).sum()
    return total / len(embeddings)


MEASURES = {"recall_at_k": recall_at_k, "knn_accuracy": knn_accuracy, "mean_average_precision": mean_average_precision}


class Retrieval(Metric):
    """A torchmetrics metric of one of the measures above over a whole split: it keeps every batch's embeddings and
    labels and ranks them at compute. Under --nproc every process measures the whole split, so nothing is gathered
    (gathered copies would find each example's twin at distance 0)."""

    higher_is_better = True
    full_state_update = False

    def __init__(self, measure: str, **settings: int):
        super().__init__(sync_on_compute=False)
        self.measure, self.settings = MEASURES[measure], settings
        self.add_state("embeddings", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")

    def update(self, embeddings: Tensor, labels: Tensor) -> None:
        self.embeddings.append(embeddings.detach().flatten(1).float())
        self.labels.append(labels.detach())

    def compute(self) -> Tensor:
        return self.measure(dim_zero_cat(self.embeddings), dim_zero_cat(self.labels), **self.settings)
