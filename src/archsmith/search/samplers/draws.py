"""Random values of Optuna distributions, from generators seeded by (seed, trial number, name).

archsmith's samplers draw every random number from a generator derived from the sampler's seed,
the trial's number and what is being drawn (a parameter's name, ``"tournament"``), never from
one generator that advances in process memory. So a trial's draws do not depend on which worker
asked for it or on how many trials that process asked before: two workers with one seed draw
different trials (their numbers differ), and a resumed study continues exactly as an
uninterrupted one would.
"""

from __future__ import annotations

import math
import secrets
import zlib
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

__all__ = ["contains", "draw", "draw_other", "fresh_seed", "trial_rng"]

_MASK = (1 << 64) - 1


def fresh_seed(seed: int | None) -> int:
    """``seed`` as a non-negative 64-bit integer; ``None`` draws one from the OS."""
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or None, not {type(seed).__name__}")
    return int(seed) & _MASK


def trial_rng(seed: int, number: int, tag: str) -> np.random.Generator:
    """The generator for ``tag`` (a parameter name, ...) of trial ``number`` under ``seed``."""
    # crc32 rather than hash(): Python salts str hashes per process
    return np.random.default_rng(np.random.SeedSequence([seed, number, zlib.crc32(tag.encode())]))


def contains(distribution: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` (an external value, as in ``trial.params``) lies in ``distribution``."""
    try:
        internal = distribution.to_internal_repr(value)
    except (ValueError, TypeError):
        return False
    return bool(distribution._contains(internal))


def draw(distribution: BaseDistribution, rng: np.random.Generator) -> Any:
    """A value of ``distribution`` at random: uniform over choices and grids, log-uniform where
    the distribution is log (integers: on ``[log(low - 0.5), log(high + 0.5)]`` and rounded, so
    every integer gets the mass of its cell, as Optuna's own random sampler does)."""
    if isinstance(distribution, CategoricalDistribution):
        return distribution.choices[int(rng.integers(len(distribution.choices)))]
    if isinstance(distribution, IntDistribution):
        if distribution.log:
            u = rng.uniform(math.log(distribution.low - 0.5), math.log(distribution.high + 0.5))
            return int(min(max(round(math.exp(u)), distribution.low), distribution.high))
        n = (distribution.high - distribution.low) // distribution.step + 1
        return int(distribution.low + distribution.step * int(rng.integers(n)))
    if isinstance(distribution, FloatDistribution):
        if distribution.step is not None:
            n = round((distribution.high - distribution.low) / distribution.step) + 1
            value = distribution.low + distribution.step * int(rng.integers(n))
            return float(min(value, distribution.high))
        if distribution.log:
            u = rng.uniform(math.log(distribution.low), math.log(distribution.high))
            return float(min(max(math.exp(u), distribution.low), distribution.high))
        return float(rng.uniform(distribution.low, distribution.high))
    raise TypeError(f"unsupported distribution {distribution!r}")


def draw_other(distribution: BaseDistribution, value: Any, rng: np.random.Generator) -> Any:
    """A value of ``distribution`` other than ``value`` (a mutation), drawn as :func:`draw` draws
    but conditioned on differing; any value if ``value`` is not in the distribution.

    Categorical and stepped distributions pick uniformly among the other choices; continuous and
    log-int ones redraw until the value differs (a few tries at most in practice)."""
    if distribution.single() or not contains(distribution, value):
        return draw(distribution, rng)
    if isinstance(distribution, CategoricalDistribution):
        here = distribution.to_internal_repr(value)
        others = [i for i in range(len(distribution.choices)) if i != here]
        return distribution.choices[others[int(rng.integers(len(others)))]]
    if isinstance(distribution, IntDistribution) and not distribution.log:
        grid = range(distribution.low, distribution.high + 1, distribution.step)
        others = [v for v in grid if v != value]
        return others[int(rng.integers(len(others)))]
    for _ in range(64):
        other = draw(distribution, rng)
        if other != value:
            return other
    # a log-int grid whose other values all carry tiny mass: fall back to uniform over them
    if isinstance(distribution, IntDistribution):
        grid = range(distribution.low, distribution.high + 1, distribution.step)
        others = [v for v in grid if v != value]
        return others[int(rng.integers(len(others)))]
    raise RuntimeError(f"could not draw a value of {distribution!r} other than {value!r}")
