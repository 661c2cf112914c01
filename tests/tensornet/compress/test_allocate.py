"""Rank allocation under a budget: optimal on convex curves (brute force), budget respected."""

import itertools

import numpy as np
import pytest

from archsmith.errors import ArchsmithError
from archsmith.tensornet.compress.allocate import (
    RankCurve,
    allocate_greedy,
    allocate_uniform,
    total_params,
)


def _convex_curve(name, rng, points=6, step=10):
    # equal parameter steps and decreasing, convex errors: marginal analysis is exact here
    drops = np.sort(rng.uniform(0.1, 1.0, points - 1))[::-1]
    errors = np.concatenate([[drops.sum() + 0.1], drops.sum() + 0.1 - np.cumsum(drops)])
    params = [step * (i + 1) for i in range(points)]
    return RankCurve(
        name, step * (points + 1), tuple(range(1, points + 1)), tuple(params), tuple(errors)
    )


def _brute_force(curves, budget):
    best = None
    for idx in itertools.product(*(range(len(c.ranks)) for c in curves)):
        p = sum(c.params[i] for c, i in zip(curves, idx, strict=True))
        if p <= budget:
            e = sum(c.errors[i] for c, i in zip(curves, idx, strict=True))
            if best is None or e < best:
                best = e
    return best


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("budget", [30, 75, 120, 170])
def test_greedy_is_optimal_on_convex_equal_step_curves(seed, budget):
    rng = np.random.default_rng(seed)
    curves = [_convex_curve(f"l{i}", rng) for i in range(3)]
    ranks = allocate_greedy(curves, budget)
    assert total_params(curves, ranks) <= budget
    got = sum(c.errors[c.ranks.index(ranks[c.name])] for c in curves)
    assert got == pytest.approx(_brute_force(curves, budget))


def test_greedy_crosses_a_flat_stretch():
    # the second rank gains nothing, the third a lot: the lookahead must still find it
    flat = RankCurve("flat", 100, (1, 2, 3), (10, 20, 30), (1.0, 1.0, 0.0))
    other = RankCurve("other", 100, (1, 2), (10, 20), (0.5, 0.45))
    assert allocate_greedy([flat, other], 40) == {"flat": 3, "other": 1}


def test_greedy_refuses_an_impossible_budget():
    curve = RankCurve("a", 100, (1, 2), (30, 60), (1.0, 0.5))
    with pytest.raises(ArchsmithError, match="smallest ranks keep 30 of 100"):
        allocate_greedy([curve], 20)


def test_uniform_keeps_the_same_share():
    a = RankCurve("a", 100, (1, 2, 3), (20, 40, 60), (0.0, 0.0, 0.0))
    b = RankCurve("b", 1000, (1, 2, 3), (100, 450, 700), (0.0, 0.0, 0.0))
    assert allocate_uniform([a, b], 0.5) == {"a": 2, "b": 2}
    assert allocate_uniform([a, b], 0.05) == {"a": 1, "b": 1}
