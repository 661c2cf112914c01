"""Hard budgets from the cost model, checked before a candidate trains.

A user states limits on what a network may cost (``--max-params 50000``,
``--max-activation-mb 20``, ...). Optuna itself offers only soft constraints; here a budget is
hard: the cost model measures each candidate on one training batch before any training, and a
candidate over any limit is never trained. It is told to the study as ``PRUNED`` with its
constraint violations (``used / limit - 1`` per budget, positive = violated; see
:mod:`archsmith.search.records`), so the samplers learn to avoid the region.

The cheap costs come first: the parameter count needs no forward pass, so a candidate over a
parameter budget is turned down without running it at all (Archai's split of cheap objectives,
checked first, from expensive ones).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from archsmith.cost import measure
from archsmith.errors import ArchsmithError
from archsmith.search.records import COST_KEYS
from archsmith.tasks import Task

__all__ = ["Budgets", "Rejection", "candidate_cost", "count_params"]

_MB = 1024 * 1024


@dataclass(frozen=True)
class Rejection:
    """Why a candidate was turned down: the first budget it broke."""

    budget: str  # a key of COST_KEYS
    used: float
    limit: float

    @property
    def reason(self) -> str:
        return f"{self.budget} {_fmt(self.used)} > {_fmt(self.limit)}"

    def as_dict(self) -> dict[str, object]:
        return {
            "budget": self.budget,
            "used": self.used,
            "limit": self.limit,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Budgets:
    """Upper limits on a candidate's costs; ``None`` leaves a cost free.

    Attributes:
        params: parameters (every distinct tensor counted once).
        flops: FLOPs of one training step (forward and backward) on one batch.
        activation_mb: MB of activations autograd saves for the backward of one training step.
        latency_ms: median latency of an inference forward of one batch, ms.
    """

    params: float | None = None
    flops: float | None = None
    activation_mb: float | None = None
    latency_ms: float | None = None

    def __post_init__(self) -> None:
        for name, limit in self.limits().items():
            if not (math.isfinite(limit) and limit > 0):
                raise ArchsmithError(
                    f"--max-{name.replace('_', '-')}: must be a positive number, got {limit}"
                )

    def limits(self) -> dict[str, float]:
        """The limits that are set, by cost name (the keys of :data:`COST_KEYS`)."""
        out = {
            "params": self.params,
            "flops": self.flops,
            "activation_mb": self.activation_mb,
            "latency_ms": self.latency_ms,
        }
        return {k: float(v) for k, v in out.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, float | None]) -> Budgets:
        unknown = set(data) - set(COST_KEYS)
        if unknown:
            raise ArchsmithError(
                f"budgets: unknown cost {sorted(unknown)[0]!r} (costs: {', '.join(COST_KEYS)})"
            )
        return cls(**dict(data))

    def check(self, cost: Mapping[str, float]) -> Rejection | None:
        """The first limit (in :data:`COST_KEYS` order) that ``cost`` exceeds, if any."""
        for name, limit in self.limits().items():
            if name in cost and cost[name] > limit:
                return Rejection(name, float(cost[name]), limit)
        return None

    def violations(self, cost: Mapping[str, float]) -> dict[str, float]:
        """``used / limit - 1`` for every limit whose cost is known (Optuna's constraint values:
        positive means over budget by that fraction)."""
        return {n: cost[n] / lim - 1.0 for n, lim in self.limits().items() if n in cost}


def count_params(model: nn.Module) -> int:
    """Parameters of ``model``, each distinct tensor once (as the cost model counts them)."""
    return sum(p.numel() for p in model.parameters())


def candidate_cost(
    model: nn.Module,
    task: Task,
    *,
    batch_size: int,
    needed: frozenset[str] | set[str],
    budgets: Budgets | None = None,
) -> dict[str, float]:
    """The costs in ``needed`` (keys of :data:`COST_KEYS`) of ``model`` on one batch of ``task``.

    With ``budgets``, stops after the parameter count when that alone breaks a budget, so an
    oversized candidate never runs. FLOPs and activations come from one measured training step;
    latency is measured only when asked for (it takes the longest).
    """
    cost: dict[str, float] = {"params": float(count_params(model))}
    if budgets is not None and budgets.check(cost) is not None:
        return cost
    rest = set(needed) - {"params"}
    if not rest:
        return cost
    x, y = task.example_batch(batch_size)
    timing = "latency_ms" in rest
    was_training = model.training
    try:
        measured = measure(
            model, x, target=y, loss_fn=task.loss, timing=timing, repeats=5, warmup=1
        )
    finally:
        model.train(was_training)
        model.zero_grad(set_to_none=True)
    cost["flops"] = float(measured.train_step_flops)
    cost["activation_mb"] = measured.saved_activation_bytes / _MB
    if timing and measured.forward_ms is not None:
        cost["latency_ms"] = float(measured.forward_ms)
    return cost


def _fmt(value: float) -> str:
    if float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:.4g}"
