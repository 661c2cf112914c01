"""Random draws: in range, distributed as stated (uniform, log-uniform, integer cells), seeded
by (seed, trial number, tag), and mutations that always differ."""

from __future__ import annotations

import math

import numpy as np
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from archsmith.search.samplers.draws import contains, draw, draw_other, fresh_seed, trial_rng

DISTS = [
    CategoricalDistribution(["a", None, 3, 2.5, True]),
    IntDistribution(1, 9),
    IntDistribution(0, 100, step=25),
    IntDistribution(1, 1024, log=True),
    FloatDistribution(-2.0, 3.0),
    FloatDistribution(0.0, 1.0, step=0.125),
    FloatDistribution(1e-5, 1.0, log=True),
]


def _within(count: int, n: int, p: float) -> bool:
    """``count`` successes of ``n`` is within 5 standard deviations of ``n p``."""
    return abs(count - n * p) <= 5 * math.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("dist", DISTS, ids=repr)
def test_draws_lie_in_the_distribution_and_mutations_differ(dist) -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = draw(dist, rng)
        assert contains(dist, v)
        w = draw_other(dist, v, rng)
        assert contains(dist, w) and w != v


def test_log_uniform_float_puts_equal_mass_per_decade() -> None:
    rng = np.random.default_rng(1)
    n = 20000
    xs = [draw(FloatDistribution(1e-5, 1.0, log=True), rng) for _ in range(n)]
    assert _within(sum(x < 1e-4 for x in xs), n, 0.2)  # the first of five decades
    assert _within(sum(x > 1e-1 for x in xs), n, 0.2)


def test_log_int_gives_each_integer_the_mass_of_its_cell() -> None:
    # on [log 0.5, log 100.5] then rounded: P(v <= 9) = (log 9.5 - log 0.5) / (log 100.5 - log 0.5)
    rng = np.random.default_rng(2)
    n = 20000
    vs = [draw(IntDistribution(1, 100, log=True), rng) for _ in range(n)]
    p = (math.log(9.5) - math.log(0.5)) / (math.log(100.5) - math.log(0.5))
    assert _within(sum(v <= 9 for v in vs), n, p)
    assert min(vs) == 1 and max(vs) == 100


def test_mutation_of_a_categorical_is_uniform_over_the_others() -> None:
    rng = np.random.default_rng(3)
    d = CategoricalDistribution(["a", "b", "c", "d"])
    n = 9000
    got = [draw_other(d, "b", rng) for _ in range(n)]
    for c in "acd":
        assert _within(got.count(c), n, 1 / 3)


def test_a_value_outside_the_distribution_mutates_to_any_value() -> None:
    d = IntDistribution(1, 3)
    assert not contains(d, 7)
    assert contains(d, draw_other(d, 7, np.random.default_rng(0)))


def test_trial_generators_are_keyed_by_seed_number_and_tag() -> None:
    def first(seed: int, number: int, tag: str) -> float:
        return float(trial_rng(seed, number, tag).random())

    assert first(0, 5, "x") == first(0, 5, "x")
    assert len({first(0, 5, "x"), first(1, 5, "x"), first(0, 6, "x"), first(0, 5, "y")}) == 4


def test_fresh_seed() -> None:
    assert fresh_seed(7) == 7
    assert fresh_seed(-1) == 2**64 - 1  # negative seeds map into SeedSequence's range
    assert 0 <= fresh_seed(None) < 2**63
    with pytest.raises(TypeError):
        fresh_seed(1.5)  # type: ignore[arg-type]
