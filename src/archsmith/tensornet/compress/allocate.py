"""Per-layer ranks under a parameter budget.

Each layer ``l`` comes with a curve: for ascending ranks ``r``, the parameters ``p_l(r)`` its
factored form stores and the estimated damage ``e_l(r)`` to the model's output when only that
layer is factored at ``r`` (see :mod:`.sensitivity`). Treating damage as additive over layers,
:func:`allocate_greedy` minimises ``sum_l e_l(r_l)`` subject to ``sum_l p_l(r_l) <= budget`` by
marginal analysis: start every layer at its smallest rank, then repeatedly take the single rank
increase, in any layer and of any size, with the largest damage removed per parameter spent
that still fits the budget (looking past the next rank lets it cross non-convex stretches of a
curve). This is the greedy used for bit and rank allocation in compression (e.g. the
rate-distortion view in "Approximately Optimal Core Shapes for Tensor Decompositions", Ghadiri et
al., 2023; CompactifAI chooses bond dimensions per layer in the same spirit).
:func:`allocate_uniform` is the baseline that keeps the same share of every layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from archsmith.errors import ArchsmithError

__all__ = ["RankCurve", "allocate_greedy", "allocate_uniform", "total_params"]


@dataclass(frozen=True)
class RankCurve:
    """Parameters and estimated damage of one layer at each candidate rank.

    Attributes:
        name: the layer's dotted name.
        dense_params: parameters of the dense layer (weight + bias).
        ranks: candidate ranks, ascending.
        params: ``params[i]`` — parameters at ``ranks[i]`` (weight cores + bias), ascending.
        errors: ``errors[i]`` — estimated damage at ``ranks[i]`` (comparable across layers).
        variant: the layer's constructor options these ranks apply to (e.g. its mode split).
    """

    name: str
    dense_params: int
    ranks: tuple[int, ...]
    params: tuple[int, ...]
    errors: tuple[float, ...]
    variant: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not self.ranks or not (len(self.ranks) == len(self.params) == len(self.errors)):
            raise ValueError(f"{self.name}: ranks, params and errors must be non-empty and aligned")


def total_params(curves: Sequence[RankCurve], ranks: dict[str, int]) -> int:
    """Parameters of all layers at the chosen ``ranks``."""
    return sum(c.params[c.ranks.index(ranks[c.name])] for c in curves)


def _check_floor(curves: Sequence[RankCurve], budget: int) -> None:
    floor = sum(c.params[0] for c in curves)
    if floor > budget:
        dense = sum(c.dense_params for c in curves)
        raise ArchsmithError(
            f"--target-params: even the smallest ranks keep {floor} of {dense} parameters "
            f"(a reduction of at most {1 - floor / dense:.3f}); ask for less"
        )


def allocate_greedy(curves: Sequence[RankCurve], budget: int) -> dict[str, int]:
    """Ranks ``{name: rank}`` with ``sum params <= budget`` and small total damage (see module).

    Raises:
        ArchsmithError: when even the smallest rank of every layer exceeds ``budget``.
    """
    _check_floor(curves, budget)
    index = [0] * len(curves)
    used = sum(c.params[0] for c in curves)
    while True:
        best: tuple[float, int, int, int] | None = None  # (-gain per param, cost, layer, to)
        for i, curve in enumerate(curves):
            k = index[i]
            for j in range(k + 1, len(curve.ranks)):
                cost = curve.params[j] - curve.params[k]
                if used + cost > budget:
                    break  # params ascend: larger ranks cost more
                gain = curve.errors[k] - curve.errors[j]
                if gain <= 0 or cost <= 0:
                    continue
                key = (-gain / cost, cost, i, j)
                if best is None or key < best:
                    best = key
        if best is None:
            break
        _, cost, i, j = best
        index[i] = j
        used += cost
    return {c.name: c.ranks[k] for c, k in zip(curves, index, strict=True)}


def allocate_uniform(curves: Sequence[RankCurve], keep: float) -> dict[str, int]:
    """The same share for every layer: the largest rank storing at most ``keep`` of the layer's
    dense parameters (the smallest rank when none does)."""
    out: dict[str, int] = {}
    for curve in curves:
        fits = [
            r
            for r, p in zip(curve.ranks, curve.params, strict=True)
            if p <= keep * curve.dense_params
        ]
        out[curve.name] = fits[-1] if fits else curve.ranks[0]
    return out
