"""Rank selection under a parameter budget: Tucker core shapes and TT bond dimensions.

Both use the same greedy on singular-value energy. Every rank starts at 1; each step grows by
one the rank whose next singular value squared (the energy it would keep) per added parameter
is largest among the moves that still fit the budget, until none fits.

- Tucker: the spectra are those of the mode unfoldings. Dropped energy bounds the HOSVD error,
  ``||T - T_hat||^2 <= sum_k sum_{i > R_k} s_{k,i}^2``, so the greedy minimises that bound per
  parameter. This follows the problem of Ghadiri, Fahrbach, Fu and Mirrokni, "Approximately
  Optimal Core Shapes for Tensor Decompositions" (ICML 2023), which picks the core shape
  maximising the kept energy under a size budget (they solve it as a knapsack with guarantees;
  the greedy here is the simple ratio heuristic for the same objective).
- TT: the spectra are those of the TT unfoldings ``[n_1 ... n_k, n_{k+1} ... n_d]``; TT-SVD's
  error obeys ``||A - TT||^2 <= sum_k (energy dropped at bond k)`` (Oseledets 2011, Thm 2.2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from archsmith.errors import ArchsmithError
from archsmith.tensornet.core.tt import max_tt_ranks, tt_params
from archsmith.tensornet.core.tucker import mode_singular_values, tucker_params

__all__ = [
    "greedy_ranks",
    "largest_uniform_rank",
    "tt_bond_spectra",
    "tt_ranks_for_budget",
    "tucker_core_shape",
]


def greedy_ranks(
    spectra: Sequence[torch.Tensor],
    cost: Callable[[tuple[int, ...]], int],
    budget: int,
    caps: Sequence[int] | None = None,
) -> tuple[int, ...]:
    """Grow ranks from all-ones, one unit at a time, by largest kept energy per added parameter;
    stop when no move fits the budget or keeps more than round-off energy.

    Args:
        spectra: per rank, the singular values it selects from (descending).
        cost: parameters of a rank tuple (must be non-decreasing in every rank).
        budget: maximum parameters; if even all-ones exceeds it, all-ones is returned.
        caps: optional per-rank maxima (default: the spectrum lengths).
    """
    limits = (
        [len(s) for s in spectra]
        if caps is None
        else [min(c, len(s)) for c, s in zip(caps, spectra, strict=True)]
    )
    energy = [s.double() ** 2 for s in spectra]
    # singular values at round-off level keep nothing: growing into them only spends budget
    floor = 1e-24 * max((float(e.sum()) for e in energy), default=0.0)
    ranks = [1] * len(spectra)
    current = cost(tuple(ranks))
    while True:
        best, best_score, best_cost = -1, -1.0, 0
        for k in range(len(ranks)):
            if ranks[k] >= limits[k] or float(energy[k][ranks[k]]) <= floor:
                continue
            trial = list(ranks)
            trial[k] += 1
            c = cost(tuple(trial))
            if c > budget:
                continue
            score = float(energy[k][ranks[k]]) / max(c - current, 1)
            if score > best_score:
                best, best_score, best_cost = k, score, c
        if best < 0:
            return tuple(ranks)
        ranks[best] += 1
        current = best_cost


def tucker_core_shape(tensor: torch.Tensor, budget: int) -> tuple[int, ...]:
    """Tucker ranks ``(R_1, ..., R_N)`` for ``tensor`` with core plus factors within ``budget``
    entries (greedy on mode-unfolding energy; see the module docstring)."""
    sizes = tuple(tensor.shape)
    return greedy_ranks(mode_singular_values(tensor), lambda r: tucker_params(sizes, r), budget)


def tt_bond_spectra(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Singular values of each TT unfolding ``[n_1 ... n_k, n_{k+1} ... n_d]``, k = 1..d-1."""
    sizes = tensor.shape
    out = []
    for k in range(1, tensor.ndim):
        out.append(torch.linalg.svdvals(tensor.reshape(math.prod(sizes[:k]), -1)))
    return out


def tt_ranks_for_budget(tensor: torch.Tensor, budget: int) -> tuple[int, ...]:
    """TT bond dimensions for ``tensor`` with at most ``budget`` core entries (greedy on the
    unfolding spectra; see the module docstring)."""
    sizes = tuple(tensor.shape)
    return greedy_ranks(
        tt_bond_spectra(tensor), lambda r: tt_params(sizes, r), budget, caps=max_tt_ranks(sizes)
    )


def largest_uniform_rank(count: Callable[[int], int], budget: int, max_rank: int) -> int:
    """The largest ``r`` in ``[1, max_rank]`` with ``count(r) <= budget`` (1 if none), for a
    parameter count non-decreasing in ``r``."""
    if budget < 1:
        raise ArchsmithError(f"parameter budget must be >= 1, got {budget}")
    lo, hi = 1, max(1, max_rank)
    if count(lo) > budget:
        return 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo
