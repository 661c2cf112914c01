"""What a search space is, and the wrapper that checks what a space returns.

A space is a plain function ``space(trial, task) -> Spec`` that calls ``trial.suggest_*``
(Optuna's define-by-run API: later choices may depend on earlier ones) and returns an archsmith
spec. Everything the design needs is then in ``trial.params``: :func:`~.rebuild.rebuild` makes
the same spec again from them, with no study.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna

from archsmith.errors import ArchsmithError
from archsmith.search.spaces.names import check_spec_names
from archsmith.spec import Spec
from archsmith.tasks import Task

__all__ = ["CheckedSpace", "Space", "model_spec"]

#: ``space(trial, task) -> Spec``; ``trial`` is an :class:`optuna.Trial` or a
#: :class:`optuna.trial.FixedTrial` (rebuilding a design from its parameters)
Space = Callable[[optuna.Trial, Task], Spec]


class CheckedSpace:
    """A space whose every answer is checked: a :class:`Spec` (or its JSON dict) naming only
    registered models, blocks and layers. A bad answer is one line naming the space and the
    trial parameter that chose the bad name.

    Args:
        fn: the space function.
        label: how errors name it (``"my_space.py:space"``, ``"default vector space"``).
    """

    def __init__(self, fn: Callable[[Any, Task], Any], label: str) -> None:
        self.fn = fn
        self.label = label

    def __call__(self, trial: optuna.Trial, task: Task) -> Spec:
        result = self.fn(trial, task)
        if isinstance(result, dict):
            try:
                result = Spec.from_dict(result)
            except ArchsmithError as err:
                raise ArchsmithError(f"space {self.label}: {err}") from None
        if not isinstance(result, Spec):
            raise ArchsmithError(
                f"space {self.label}: must return an archsmith Spec, got {type(result).__name__}"
            )
        check_spec_names(result, trial.params, where=f"space {self.label}")
        return result

    def __repr__(self) -> str:
        return f"CheckedSpace({self.label!r})"


def model_spec(task: Task, model: str, options: dict[str, Any]) -> Spec:
    """The spec of registered ``model`` with ``options``, for ``task`` (named in the spec so
    a saved design says what it was built for)."""
    return Spec(task=task.name, task_options=dict(task.options), model=model, options=options)
