"""Named tasks: data with fixed seeded splits, an input spec, a loss and metrics.

>>> from archsmith.tasks import get_task
>>> task = get_task("digits")
>>> task.input.shape, task.num_outputs, len(task.train)
((1, 8, 8), 10, 1257)

Registered tasks (see :func:`list_tasks`): ``digits`` and ``digits-flat`` (classification),
``breast-cancer-survival`` (survival), ``mqar`` and ``selective-copy`` (synthetic sequence
tasks). User data: ``csv:PATH`` (with ``target=COLUMN``) and ``npz:PATH``.
"""

from __future__ import annotations

# Importing the task modules registers them; their heavy imports (scikit-learn,
# scikit-survival) happen only when a task is built.
from archsmith.tasks import (
    breast_cancer,
    csv_data,
    digits,
    mqar,
    npz_data,
    selective_copy,
    sklearn_tabular,
    volumes,
)
from archsmith.tasks.base import InputSpec, Split, Task
from archsmith.tasks.registry import get_task, list_tasks, register_task
from archsmith.tasks.survival_loss import cox_ph_loss

__all__ = [
    "InputSpec",
    "Split",
    "Task",
    "cox_ph_loss",
    "get_task",
    "list_tasks",
    "register_task",
]

del breast_cancer, csv_data, digits, mqar, npz_data, selective_copy, sklearn_tabular, volumes
