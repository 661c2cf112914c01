"""Non-dominated ranks and crowding distances (Deb et al., 2002, NSGA-II), on costs (lower is
better in every coordinate). Naive O(n² m) sorting: populations here are tens of trials."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["crowding_distances", "dominates", "nondominated_ranks"]

Point = Sequence[float]


def dominates(a: Point, b: Point) -> bool:
    """``a`` is no worse than ``b`` everywhere and better somewhere."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def nondominated_ranks(points: Sequence[Point]) -> list[int]:
    """Front index of each point: 0 for the non-dominated, 1 for those dominated only by
    front 0, ... (peel the front off and repeat)."""
    ranks = [-1] * len(points)
    left = set(range(len(points)))
    rank = 0
    while left:
        front = {
            i for i in left if not any(dominates(points[j], points[i]) for j in left if j != i)
        }
        for i in front:
            ranks[i] = rank
        left -= front
        rank += 1
    return ranks


def crowding_distances(points: Sequence[Point], ranks: Sequence[int]) -> list[float]:
    """Crowding distance of each point within its front: per objective, the gap between its two
    neighbours divided by the front's range, summed; the front's extremes get ``inf``."""
    dist = [0.0] * len(points)
    if not points:
        return dist
    for rank in set(ranks):
        members = [i for i, r in enumerate(ranks) if r == rank]
        for k in range(len(points[0])):
            order = sorted(members, key=lambda i: (points[i][k], i))
            lo, hi = points[order[0]][k], points[order[-1]][k]
            dist[order[0]] = dist[order[-1]] = math.inf
            if hi == lo:
                continue
            for before, i, after in zip(order, order[1:], order[2:], strict=False):
                dist[i] += (points[after][k] - points[before][k]) / (hi - lo)
    return dist
