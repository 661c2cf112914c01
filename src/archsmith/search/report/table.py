"""``trials.csv``: one row per trial of a search, from the study's storage alone.

Columns, in order (``NAME`` stands for each name that occurs in any trial):

- ``number``, ``state`` (Optuna's: COMPLETE, PRUNED, FAIL, RUNNING, WAITING) and ``outcome``
  (archsmith's reading of it: ``complete``, ``rejected`` (over a budget, never trained),
  ``pruned`` (stopped early), ``failed``, ``stale`` (its worker died; the retry is a later
  trial), ``running``, ``waiting``), ``feasible`` (complete and within every budget);
- ``rejected_budget``, ``rejected_reason`` (e.g. ``params``, ``params 61,234 > 50,000``);
- ``params_NAME``: the sampled parameters;
- ``value_NAME`` per objective of the study (``value_metric``, then costs such as
  ``value_params`` in a Pareto search);
- ``val_NAME``, ``test_NAME``: the task's metrics of the trained candidate;
- ``cost_NAME`` for every cost of :data:`~archsmith.search.records.COST_KEYS` (empty where not
  measured, e.g. latency without a latency budget or objective);
- ``regret`` (benchmarks), ``last_step`` / ``last_value`` (the last reported epoch of a trial
  with intermediate values), ``duration_s``, ``seed``, ``retry_of``, ``error``, each only when
  some trial has it (``duration_s`` and ``seed`` always).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from archsmith.io import atomic_write
from archsmith.search import records
from archsmith.search.heartbeat import RETRY_OF, retried_numbers
from archsmith.search.report.best import is_feasible
from archsmith.search.report.settings import ReportSettings, read_settings

__all__ = ["frame_of", "outcome_of", "trials_frame", "write_trials_csv"]

#: columns holding whole numbers (nullable, so an empty cell stays empty rather than ``nan``)
_INT_COLUMNS = ("number", "seed", "retry_of", "last_step")


def outcome_of(t: FrozenTrial, retried: set[int]) -> str:
    """archsmith's name for what happened to ``t`` (module docstring); ``retried``: numbers of
    stale trials that a later trial re-runs."""
    if t.state == TrialState.COMPLETE:
        return "complete"
    if t.state == TrialState.PRUNED:
        return "rejected" if records.is_rejected(t.user_attrs) else "pruned"
    if t.state == TrialState.FAIL:
        return "stale" if t.number in retried else "failed"
    return t.state.name.lower()  # running, waiting


def _number(value: Any) -> Any:
    """A JSON scalar as a CSV cell: numbers as floats, other scalars as they are."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    return value if isinstance(value, str) else str(value)


def _row(t: FrozenTrial, settings: ReportSettings, retried: set[int]) -> dict[str, Any]:
    attrs = t.user_attrs
    row: dict[str, Any] = {
        "number": t.number,
        "state": t.state.name,
        "outcome": outcome_of(t, retried),
        "feasible": is_feasible(t),
    }
    rejected = attrs.get(records.REJECTED)
    if isinstance(rejected, dict):
        row["rejected_budget"] = str(rejected.get("budget", ""))
        row["rejected_reason"] = str(rejected.get("reason", ""))
    for name, value in t.params.items():
        row[f"params_{name}"] = value
    if t.state == TrialState.COMPLETE and t.values is not None:
        # only a complete trial has objective values: Optuna gives a pruned one its last
        # intermediate value (kept as ``last_value``)
        for name, value in zip(settings.objectives, t.values, strict=False):
            row[f"value_{name}"] = value
    metrics = attrs.get(records.METRICS)
    if isinstance(metrics, dict):
        for split in ("val", "test"):
            numbers = metrics.get(split)
            if isinstance(numbers, dict):
                for name, value in numbers.items():
                    row[f"{split}_{name}"] = _number(value)
    cost = attrs.get(records.COST)
    if isinstance(cost, dict):
        for name in records.COST_KEYS:
            if name in cost:
                row[f"cost_{name}"] = _number(cost[name])
    if records.REGRET in attrs:
        row["regret"] = _number(attrs[records.REGRET])
    if t.intermediate_values:
        step = max(t.intermediate_values)
        row["last_step"] = step
        row["last_value"] = t.intermediate_values[step]
    row["duration_s"] = t.duration.total_seconds() if t.duration is not None else None
    if isinstance(attrs.get(records.SEED), int):
        row["seed"] = attrs[records.SEED]
    if RETRY_OF in attrs:
        row["retry_of"] = attrs[RETRY_OF]
    if records.ERROR in attrs:
        row["error"] = str(attrs[records.ERROR])
    return row


def _ordered(rows: list[dict[str, Any]], settings: ReportSettings) -> list[str]:
    """The module docstring's column order over the columns the rows have."""
    seen: set[str] = set()
    for row in rows:
        seen |= row.keys()

    def some(prefix: str) -> list[str]:
        return sorted(c for c in seen if c.startswith(prefix))

    columns = ["number", "state", "outcome", "feasible", "rejected_budget", "rejected_reason"]
    columns += some("params_")
    columns += [f"value_{name}" for name in settings.objectives]
    columns += some("val_") + some("test_")
    columns += [f"cost_{name}" for name in records.COST_KEYS]
    columns += [c for c in ("regret", "last_step", "last_value") if c in seen]
    columns += ["duration_s", "seed"]
    columns += [c for c in ("retry_of", "error") if c in seen]
    return columns


def frame_of(trials: Sequence[FrozenTrial], settings: ReportSettings) -> pd.DataFrame:
    """The trials table (module docstring) of a snapshot of a study's trials."""
    retried = retried_numbers(list(trials))
    rows = [_row(t, settings, retried) for t in sorted(trials, key=lambda t: t.number)]
    columns = _ordered(rows, settings)
    whole = [c for c in columns if c in _INT_COLUMNS or _whole([r.get(c) for r in rows])]
    frame = pd.DataFrame(rows, columns=columns)
    for column in whole:
        frame[column] = frame[column].astype("Int64")
    return frame


def _whole(values: list[Any]) -> bool:
    """Whether every value present is an int: such a column (an integer parameter) stays whole
    numbers with empty cells, rather than floats with ``nan``."""
    present = [v for v in values if v is not None]
    return bool(present) and all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in present
    )


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial of ``study`` (module docstring's columns)."""
    trials = study.get_trials(deepcopy=False)
    return frame_of(trials, read_settings(study, trials))


def write_trials_csv(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` as CSV to ``path`` atomically (a reader never sees half a table)."""

    def write(tmp: str) -> None:
        frame.to_csv(tmp, index=False)

    return atomic_write(path, write)
