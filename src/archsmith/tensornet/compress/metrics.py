"""Agreement of a compressed model's outputs with the original's."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["mean_cosine", "neighbour_recall"]


def mean_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over rows of the cosine similarity of ``a[i]`` and ``b[i]``; ``a, b: [N, D]``."""
    return float(F.cosine_similarity(a.double(), b.double(), dim=1).mean())


def _neighbours(x: torch.Tensor, k: int) -> torch.Tensor:
    x = F.normalize(x.double(), dim=1)
    sim = x @ x.T
    sim.fill_diagonal_(-float("inf"))  # a sentence is not its own neighbour
    return sim.topk(k, dim=1).indices  # [N, k]


def neighbour_recall(reference: torch.Tensor, candidate: torch.Tensor, k: int = 10) -> float:
    """Recall@k of the reference model's nearest neighbours: for each row ``i`` of the set, the
    share of its ``k`` cosine-nearest other rows under ``reference`` that are also among its ``k``
    nearest under ``candidate``, averaged over rows. ``reference, candidate: [N, D]``, ``N > k``.
    """
    if reference.shape[0] <= k:
        raise ValueError(f"recall@{k} needs more than {k} rows, got {reference.shape[0]}")
    ref, cand = _neighbours(reference, k), _neighbours(candidate, k)
    hits = (ref[:, :, None] == cand[:, None, :]).any(dim=2).sum(dim=1)  # [N]
    return float(hits.double().mean() / k)
