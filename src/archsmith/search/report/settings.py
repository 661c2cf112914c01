"""What a report needs to know about its search, read back from the study alone.

The runner stores the search's configuration in the study (user attr
:data:`~archsmith.search.records.STUDY_CONFIG`, :meth:`SearchConfig.to_dict`). A report must be
buildable from any storage, including one written by an older archsmith or by hand, so every
field here has a default and malformed values fall back to it rather than failing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from archsmith.search import records

__all__ = ["ReportSettings", "read_settings"]


@dataclass(frozen=True)
class ReportSettings:
    """The search as the report describes it.

    Attributes:
        objectives: one name per study direction; the first is the task's metric (``"metric"``),
            the rest are costs of :data:`~archsmith.search.records.COST_KEYS` (minimized).
        directions: ``"maximize"`` / ``"minimize"`` per objective (from the study itself).
        metric_name: the task's primary validation metric (``"accuracy"``) when the trials show
            it, else ``"metric"``.
        budgets: hard limits by cost name.
    """

    task: str | None = None
    task_options: dict[str, Any] = field(default_factory=dict)
    benchmark: str | None = None
    strategy: str = "?"
    trials: int | None = None
    seed: int | None = None
    budgets: dict[str, float] = field(default_factory=dict)
    objectives: tuple[str, ...] = ("metric",)
    directions: tuple[str, ...] = ("maximize",)
    metric_name: str = "metric"

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def cost_objectives(self) -> tuple[str, ...]:
        return self.objectives[1:]

    @property
    def maximize_metric(self) -> bool:
        return self.directions[0] == "maximize"

    @property
    def metric_label(self) -> str:
        """The y-axis name of the metric, e.g. ``"val accuracy"``."""
        return f"val {self.metric_name}" if self.metric_name != "metric" else "metric"

    @property
    def what(self) -> str:
        """``"task digits"`` or ``"benchmark nb201-cifar10"``."""
        if self.benchmark:
            return f"benchmark {self.benchmark}"
        return f"task {self.task}" if self.task else "unknown search"


def _str(value: Any, default: str | None) -> str | None:
    return value if isinstance(value, str) and value else default


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _budgets(value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    out = {}
    for name, limit in value.items():
        if (
            isinstance(name, str)
            and isinstance(limit, int | float)
            and not isinstance(limit, bool)
            and math.isfinite(limit)
        ):
            out[name] = float(limit)
    return out


def _objectives(value: Any, n: int) -> tuple[str, ...]:
    """One name per direction: the configured names, padded (``objective_2``) or cut to ``n``."""
    names = [v for v in value if isinstance(v, str)] if isinstance(value, list | tuple) else []
    names = names or ["metric"]
    names = names[:n] + [f"objective_{i}" for i in range(len(names), n)]
    return tuple(names)


def metric_name_of(trials: Sequence[FrozenTrial]) -> str:
    """The validation metric that is the first objective: the one key of the trials' recorded
    ``metrics["val"]`` equal to ``values[0]`` in every complete trial (the objective is told
    ``float(val[primary_metric])``), or ``"metric"`` when no single key fits."""
    candidates: set[str] | None = None
    for t in trials:
        metrics = t.user_attrs.get(records.METRICS)
        if t.state != TrialState.COMPLETE or not t.values or not isinstance(metrics, dict):
            continue
        val = metrics.get("val")
        if not isinstance(val, dict):
            continue
        fits = {
            k
            for k, v in val.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and float(v) == t.values[0]
        }
        candidates = fits if candidates is None else candidates & fits
    if candidates is not None and len(candidates) == 1:
        return next(iter(candidates))
    return "metric"


def read_settings(
    study: optuna.Study, trials: Sequence[FrozenTrial] | None = None
) -> ReportSettings:
    """The report's view of ``study``'s search (``trials``: a snapshot to name the metric from;
    by default the study's trials now)."""
    config = study.user_attrs.get(records.STUDY_CONFIG)
    config = config if isinstance(config, dict) else {}
    directions = tuple(
        "maximize" if d == StudyDirection.MAXIMIZE else "minimize" for d in study.directions
    )
    options = config.get("task_options")
    if trials is None:
        trials = study.get_trials(deepcopy=False)
    return ReportSettings(
        task=_str(config.get("task"), None),
        task_options=dict(options) if isinstance(options, dict) else {},
        benchmark=_str(config.get("benchmark"), None),
        strategy=_str(config.get("strategy"), "?") or "?",
        trials=_int(config.get("trials")),
        seed=_int(config.get("seed")),
        budgets=_budgets(config.get("budgets")),
        objectives=_objectives(config.get("objectives"), len(directions)),
        directions=directions,
        metric_name=metric_name_of(trials),
    )
