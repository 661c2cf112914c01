"""A distribution as a short list of choices, for a policy that picks one of K actions.

- categorical: its choices, as they are;
- int (or stepped float): every grid value when there are at most ``n_bins``; else ``n_bins``
  values spread evenly from ``low`` to ``high`` — evenly in log space when the distribution is
  log — rounded onto the grid, duplicates dropped (so a narrow log range may give fewer);
- float without a step: ``n_bins`` points from ``low`` to ``high`` inclusive, evenly spaced in
  linear or (log distributions) log space.

:func:`index_of` maps a value back to its choice: exact for categoricals, the nearest choice
(in log space for log distributions) otherwise, so a trial whose value was fixed by hand still
counts for the choice closest to it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

__all__ = ["choices_of", "index_of"]


def _on_grid(x: float, low: float, step: float, high: float) -> float:
    return min(max(low + step * round((x - low) / step), low), high)


def choices_of(distribution: BaseDistribution, n_bins: int) -> list[Any]:
    """The values a policy chooses among for ``distribution`` (see the module docstring)."""
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    if not isinstance(distribution, (IntDistribution, FloatDistribution)):
        raise TypeError(f"unsupported distribution {distribution!r}")
    low, high, log = distribution.low, distribution.high, distribution.log
    step = distribution.step
    if step is not None:
        n = round((high - low) / step) + 1
        if n <= n_bins:
            grid = [low + step * i for i in range(n)]
            return [int(v) for v in grid] if isinstance(distribution, IntDistribution) else grid
    points = np.geomspace(low, high, n_bins) if log else np.linspace(low, high, n_bins)
    if step is None:
        return [float(p) for p in points]
    out: list[Any] = []
    for p in points:
        v = _on_grid(float(p), low, step, high)
        v = round(v) if isinstance(distribution, IntDistribution) else float(v)
        if v not in out:
            out.append(v)
    return out


def index_of(distribution: BaseDistribution, choices: list[Any], value: Any) -> int:
    """The index in ``choices`` (from :func:`choices_of`) that ``value`` counts for."""
    if isinstance(distribution, CategoricalDistribution):
        return int(distribution.to_internal_repr(value))
    log = bool(getattr(distribution, "log", False))

    def where(x: float) -> float:
        return math.log(x) if log else float(x)

    target = where(value)
    return min(range(len(choices)), key=lambda i: (abs(where(choices[i]) - target), i))
