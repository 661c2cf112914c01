"""How archsmith's samplers read a finished trial: feasible or not, and its objectives as costs.

A trial is *feasible* when it is ``COMPLETE``, no budget rejected it (:mod:`records`) and every
constraint it carries is ``<= 0`` (Optuna's convention for ``trial.set_constraint``). Everything
else that finished — a rejected candidate (``PRUNED`` + :data:`records.REJECTED`), a failed one,
a complete one that broke a soft constraint — is the worst outcome and never a parent.
"""

from __future__ import annotations

from collections.abc import Sequence

from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from archsmith.search import records

__all__ = ["costs", "is_feasible", "is_stale"]


def is_feasible(trial: FrozenTrial) -> bool:
    """Whether ``trial`` is a complete, in-budget design that may rank and breed."""
    if trial.state != TrialState.COMPLETE or trial.values is None:
        return False
    if records.is_rejected(trial.user_attrs):
        return False
    return all(v <= 0.0 for v in trial.constraints.values())


def is_stale(trial: FrozenTrial) -> bool:
    """Whether ``trial`` failed without a candidate's error: its worker died (the heartbeat
    failed it and re-queued its parameters, and the copy carries the outcome), so it says
    nothing about the design. A candidate that fails records :data:`records.ERROR` before its
    trial is told ``FAIL``; a stale trial is failed from outside and carries none."""
    return trial.state == TrialState.FAIL and records.ERROR not in trial.user_attrs


def costs(values: Sequence[float], directions: Sequence[StudyDirection]) -> tuple[float, ...]:
    """``values`` turned into costs (lower is better): maximised objectives change sign."""
    return tuple(
        -float(v) if d == StudyDirection.MAXIMIZE else float(v)
        for v, d in zip(values, directions, strict=True)
    )
