"""The best design of a search: the best feasible trial, or the Pareto front of several objectives.

Feasible means ``COMPLETE`` (trained or looked up), not rejected by a budget, and every recorded
constraint ``<= 0`` (Optuna's convention: ``used / limit - 1``, positive = over budget). A trial
with no constraints recorded (a search without budgets) is feasible; note that Optuna's own
``best_trials`` would call it infeasible once any trial of the study carries constraints.

Several objectives (the metric, then costs): trial ``a`` dominates ``b`` when it is no worse in
every objective and better in one (Deb et al., 2002); the front is the feasible trials nobody
dominates. The *best* design on a front is a choice, not a fact: archsmith picks the one with the
best metric, since the costs were already bounded by the budgets the user asked for; ties go to
the cheaper design (the remaining objectives in order, then the parameter count), then to the
earlier trial. With one objective that is the best metric, then the fewest parameters (two
designs that score the same are not worth the same when one is smaller), then the earliest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from archsmith.io import atomic_write_json
from archsmith.search import records
from archsmith.search.report.settings import ReportSettings, read_settings

__all__ = [
    "best_of",
    "best_spec",
    "best_trial",
    "dominates",
    "front_of",
    "is_feasible",
    "nondominated",
    "pareto_front",
    "write_best_spec",
]

Point = Sequence[float]


def is_feasible(t: FrozenTrial) -> bool:
    """Whether ``t`` finished within every budget (module docstring)."""
    return (
        t.state == TrialState.COMPLETE
        and t.values is not None
        and not records.is_rejected(t.user_attrs)
        and all(c <= 0 for c in t.constraints.values())
    )


def dominates(a: Point, b: Point) -> bool:
    """``a`` dominates ``b`` when larger is better in every coordinate."""
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True)
    )


def nondominated(points: Sequence[Point]) -> list[int]:
    """Indices of the points no other point dominates (larger is better everywhere). Naive
    O(n² m): a search has hundreds of trials at most."""
    return [
        i
        for i, p in enumerate(points)
        if not any(dominates(q, p) for j, q in enumerate(points) if j != i)
    ]


def _signs(directions: Sequence[str]) -> list[float]:
    return [1.0 if d == "maximize" else -1.0 for d in directions]


def _signed(t: FrozenTrial, signs: Sequence[float]) -> list[float]:
    assert t.values is not None
    return [s * v for s, v in zip(signs, t.values, strict=True)]


def front_of(trials: Sequence[FrozenTrial], directions: Sequence[str]) -> list[FrozenTrial]:
    """The Pareto front of the feasible ``trials``, best first (module docstring's order).

    ``directions``: ``"maximize"`` / ``"minimize"`` per objective.
    """
    signs = _signs(directions)
    done = [t for t in trials if is_feasible(t) and len(t.values) == len(signs)]
    points = [_signed(t, signs) for t in done]
    front = [done[i] for i in nondominated(points)]
    return sorted(front, key=lambda t: ([-v for v in _signed(t, signs)], _params(t), t.number))


def _params(t: FrozenTrial) -> float:
    """The trial's recorded parameter count (``inf`` when it has none: ranked last in a tie)."""
    cost = t.user_attrs.get(records.COST)
    value = cost.get("params") if isinstance(cost, dict) else None
    return float(value) if isinstance(value, int | float) else math.inf


def best_of(trials: Sequence[FrozenTrial], directions: Sequence[str]) -> FrozenTrial | None:
    """The best feasible trial of ``trials`` (module docstring), ``None`` when there is none."""
    front = front_of(trials, directions)
    return front[0] if front else None


def _directions(study: optuna.Study) -> list[str]:
    return [
        "maximize" if d == optuna.study.StudyDirection.MAXIMIZE else "minimize"
        for d in study.directions
    ]


def pareto_front(study: optuna.Study) -> list[FrozenTrial]:
    """The feasible Pareto front of ``study`` (one objective: its best trials), best first."""
    return front_of(study.get_trials(deepcopy=False), _directions(study))


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best feasible trial of ``study``, ``None`` before one finishes."""
    return best_of(study.get_trials(deepcopy=False), _directions(study))


def best_spec(best: FrozenTrial | None, settings: ReportSettings) -> dict[str, Any] | None:
    """The archsmith spec of ``best`` for ``archsmith train --spec``: only for a task search
    (a benchmark's cells are not archsmith specs) whose best trial recorded its spec. A spec
    without a task gets the search's, so the file retrains on its own."""
    if best is None or settings.benchmark is not None or settings.task is None:
        return None
    spec = best.user_attrs.get(records.SPEC)
    if not isinstance(spec, dict):
        return None
    spec = dict(spec)
    if "task" not in spec:
        spec["task"] = settings.task
        if settings.task_options and "task_options" not in spec:
            spec["task_options"] = dict(settings.task_options)
    return spec


def write_best_spec(study: optuna.Study, path: str | Path) -> Path | None:
    """Write the best trial's spec to ``path`` (atomically); ``None`` (nothing written) for a
    benchmark search or before a feasible trial has finished."""
    trials = study.get_trials(deepcopy=False)
    spec = best_spec(best_of(trials, _directions(study)), read_settings(study, trials))
    return None if spec is None else atomic_write_json(path, spec)
