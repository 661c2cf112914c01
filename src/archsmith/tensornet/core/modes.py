"""Factorizing layer sizes into tensor modes (``1024 -> (16, 8, 8)``).

A tensorized layer reshapes ``in_features`` into modes ``(n_1, ..., n_d)``; the balanced
factorization (smallest largest factor) gives the best compression for a given rank. Sizes that
factor badly (primes such as 97) are padded to the next size that factors well, and the layer
pads its input with zeros and drops the extra outputs.
"""

from __future__ import annotations

import math
from functools import lru_cache

from archsmith.errors import ArchsmithError

__all__ = ["choose_modes", "factorize", "max_factor_bound"]


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


@lru_cache(maxsize=4096)
def _balanced(n: int, k: int) -> tuple[int, ...]:
    if k == 1:
        return (n,)
    # the largest factor d must satisfy d**k >= n; the smallest feasible d whose cofactor
    # splits into k-1 factors no larger than d is the balanced choice
    for d in _divisors(n):
        if d**k < n:
            continue
        rest = _balanced(n // d, k - 1)
        if max(rest) <= d:
            return (d, *rest)
    return (n,) + (1,) * (k - 1)  # unreachable: d = n always works


def factorize(n: int, num_factors: int) -> tuple[int, ...]:
    """The factorization of ``n`` into ``num_factors`` integers (>= 1) whose largest factor is
    as small as possible, in non-increasing order: ``factorize(96, 2) == (12, 8)``,
    ``factorize(97, 2) == (97, 1)``.
    """
    if n < 1 or num_factors < 1:
        raise ArchsmithError(f"factorize: need n >= 1 and num_factors >= 1, got {n}, {num_factors}")
    return _balanced(n, num_factors)


def max_factor_bound(n: int, num_factors: int) -> int:
    """The largest factor :func:`choose_modes` accepts without padding: twice the ideal
    ``ceil(n ** (1 / num_factors))``."""
    root = math.ceil(round(n ** (1.0 / num_factors), 9))
    return 2 * root


def choose_modes(n: int, num_factors: int, *, max_pad: float = 0.25) -> tuple[int, ...]:
    """Modes for a dimension of size ``n``: the balanced factorization of ``n`` itself when its
    largest factor is at most :func:`max_factor_bound`, else that of the smallest ``n' > n``
    (at most ``n * (1 + max_pad)``) that factors well; their product may exceed ``n`` (padding).
    """
    modes = factorize(n, num_factors)
    if num_factors == 1 or modes[0] <= max_factor_bound(n, num_factors):
        return modes
    for m in range(n + 1, int(n * (1 + max_pad)) + 2):
        cand = factorize(m, num_factors)
        if cand[0] <= max_factor_bound(m, num_factors):
            return cand
    return modes
