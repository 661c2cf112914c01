"""A design again from its trial parameters, with no study: Optuna's ``FixedTrial``.

A space is define-by-run, so its parameters are the whole design: replaying them through the
same space gives the same spec. This is how a report, a resumed search or another machine
turns a trial's ``params`` back into the network that was trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalChoiceType,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from archsmith.errors import ArchsmithError
from archsmith.search.spaces.base import Space
from archsmith.spec import Spec
from archsmith.tasks import Task

__all__ = ["rebuild"]


def rebuild(space: Space, params: Mapping[str, Any], task: Task) -> Spec:
    """The spec ``space`` makes for ``task`` when its suggestions are answered by ``params``.

    A parameter the space asks for and ``params`` lacks, or a value outside what the space now
    offers (a choice renamed or unregistered since, a width off the step), raises a one-line
    :class:`ArchsmithError` naming the parameter. Parameters the space does not ask for are
    ignored: they belong to branches this design did not take.
    """
    # a FixedTrial answers the same suggest_* calls as a live Trial: Optuna's documented way
    # to replay a space, though the two share no class a space function would name
    return space(cast(optuna.Trial, _Replay(params)), task)


class _Replay(optuna.trial.FixedTrial):
    """A ``FixedTrial`` that refuses, by name, an answer its question does not admit (Optuna's
    own only warns about an out-of-range number, and names no parameter for a lost choice)."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        super().__init__(dict(params))
        self._given = dict(params)

    def _answer(self, name: str, distribution: BaseDistribution) -> None:
        if name not in self._given:
            raise ArchsmithError(
                f"rebuild: the parameters lack {name!r}, which the space asks for "
                f"({_describe(distribution)})"
            )
        value = self._given[name]
        if not _holds(distribution, value):
            raise ArchsmithError(
                f"rebuild: parameter {name!r} = {value!r} is outside the space's choices now "
                f"({_describe(distribution)})"
            )

    def suggest_categorical(  # type: ignore[override]
        self, name: str, choices: Sequence[CategoricalChoiceType]
    ) -> CategoricalChoiceType:
        self._answer(name, CategoricalDistribution(choices))
        return super().suggest_categorical(name, choices)

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int:
        self._answer(name, IntDistribution(low, high, step=step, log=log))
        return super().suggest_int(name, low, high, step=step, log=log)

    def suggest_float(
        self,
        name: str,
        low: float,
        high: float,
        *,
        step: float | None = None,
        log: bool = False,
    ) -> float:
        self._answer(name, FloatDistribution(low, high, step=step, log=log))
        return super().suggest_float(name, low, high, step=step, log=log)


def _holds(distribution: BaseDistribution, value: Any) -> bool:
    if isinstance(distribution, CategoricalDistribution):
        # by type too: True == 1, but a flag is not a head count
        return any(value == c and type(value) is type(c) for c in distribution.choices)
    if isinstance(distribution, IntDistribution | FloatDistribution):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if isinstance(distribution, IntDistribution) and value != int(value):
            return False
        if not distribution.low <= value <= distribution.high:
            return False
        if distribution.step is not None:
            steps = (value - distribution.low) / distribution.step
            return abs(steps - round(steps)) < 1e-8
        return True
    return True


def _describe(distribution: BaseDistribution) -> str:
    if isinstance(distribution, CategoricalDistribution):
        return "choices: " + ", ".join(repr(c) for c in distribution.choices)
    if isinstance(distribution, IntDistribution | FloatDistribution):
        step = f" step {distribution.step}" if distribution.step not in (None, 1) else ""
        return f"range {distribution.low}..{distribution.high}{step}"
    return repr(distribution)
