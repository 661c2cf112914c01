"""Non-dominated ranks and crowding distances: a hand-computed case, and ranks checked against
the definition by brute force on random points."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from archsmith.search.samplers.pareto import crowding_distances, dominates, nondominated_ranks


def test_hand_case() -> None:
    pts = [(1, 4), (2, 2), (4, 1), (3, 3), (5, 5), (2, 2)]
    ranks = nondominated_ranks(pts)
    assert ranks == [0, 0, 0, 1, 2, 0]  # equal points do not dominate each other
    crowd = crowding_distances(pts, ranks)
    # front 0 = points 0 (1,4), 1 (2,2), 2 (4,1), 5 (2,2); both ranges are 3; ties sort by index.
    # f1 order 0, 1, 5, 2: point 1 gets (2-1)/3, point 5 gets (4-2)/3;
    # f2 order 2, 1, 5, 0: point 1 gets (2-1)/3, point 5 gets (4-2)/3; the ends are inf
    assert crowd[0] == crowd[2] == math.inf
    assert crowd[1] == pytest.approx(2 / 3)
    assert crowd[5] == pytest.approx(4 / 3)
    assert crowd[3] == math.inf and crowd[4] == math.inf  # one-member fronts
    assert dominates((1, 1), (1, 2)) and not dominates((1, 2), (1, 2))


def test_ranks_match_the_definition_on_random_points() -> None:
    rng = np.random.default_rng(0)
    pts = [tuple(p) for p in rng.integers(0, 6, size=(40, 3)).tolist()]
    ranks = nondominated_ranks(pts)
    for i, j in itertools.permutations(range(len(pts)), 2):
        if dominates(pts[j], pts[i]):
            assert ranks[j] < ranks[i]
    for i, r in enumerate(ranks):
        if r > 0:  # something one front up dominates it
            assert any(ranks[j] == r - 1 and dominates(pts[j], pts[i]) for j in range(len(pts)))
