"""Arrays -> a survival :class:`Task` (used by ``csv:PATH`` with ``duration=``/``event=``).

Built the way ``breast-cancer-survival`` is: ``y`` is float32 ``[N, 2]`` = (time, event), the
70/15/15 split is stratified on the event indicator so every split has events to rank, and the
numeric features are standardized with the train split's statistics (one-hot indicators stay
0/1). The loss (Cox partial likelihood) and metric (``c_index``) come with the task's kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from archsmith.errors import ArchsmithError
from archsmith.tasks.base import InputSpec, Split, Task
from archsmith.tasks.splits import split_indices
from archsmith.tasks.standardize import standardize_splits

__all__ = ["survival_task"]


def survival_task(
    name: str,
    x: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    *,
    split_seed: int,
    standardize: bool,
    numeric_features: np.ndarray | None = None,
    feature_names: tuple[str, ...] | None = None,
    event_name: str = "event",
    aux_labels: np.ndarray | None = None,
    aux_weight: float = 1.0,
    options: dict[str, Any] | None = None,
) -> Task:
    """Build the survival task from features and outcomes.

    Args:
        x: ``[N, F]`` numbers.
        time: ``[N]`` observed times (event or censoring), finite and ``>= 0``; the caller
            checks them so its errors can name rows.
        event: ``[N]`` 1 where the event was observed, 0 where censored.
        standardize: standardize ``x`` with train statistics (only the ``numeric_features``
            mask where given).
        event_name: how errors name the event column (``"'d.csv' event column 'died'"``).
        aux_labels: ``[N]`` an auxiliary class label per sample (any sortable values): ``y``
            gains a third column with the class index, learned by a second head (SeNMo's
            joint classification); its classes are the sorted distinct labels.
        aux_weight: weight of the auxiliary cross-entropy in the loss.

    Raises:
        ArchsmithError: no events at all (the partial likelihood has no terms).
    """
    time = np.asarray(time, dtype=np.float64).reshape(-1)
    event = np.asarray(event).reshape(-1)
    if not (x.shape[0] == time.shape[0] == event.shape[0]):
        raise ValueError(
            f"x, time and event disagree on the number of samples: "
            f"{x.shape[0]}, {time.shape[0]}, {event.shape[0]}"
        )
    if not np.isin(event, (0, 1)).all():
        raise ValueError("event must hold only 0 and 1")
    if not event.any():
        raise ArchsmithError(
            f"{event_name} has no events: the Cox partial likelihood needs at least one"
        )
    columns = [time, event.astype(np.float64)]
    aux_classes: tuple[Any, ...] | None = None
    if aux_labels is not None:
        aux_labels = np.asarray(aux_labels).reshape(-1)
        if aux_labels.shape[0] != time.shape[0]:
            raise ValueError(f"aux_labels has {aux_labels.shape[0]} values for {len(time)} samples")
        classes, index = np.unique(aux_labels, return_inverse=True)
        if len(classes) < 2:
            raise ArchsmithError(
                f"the auxiliary label has a single class {classes[0]!r}: nothing to classify"
            )
        aux_classes = tuple(c.item() if hasattr(c, "item") else c for c in classes)
        columns.append(index.astype(np.float64))
    y = np.stack(columns, axis=1).astype(np.float32)  # [N, 2] or [N, 3]
    parts = split_indices(len(y), stratify=y[:, 1], seed=split_seed)
    if standardize:
        x = standardize_splits(x, parts[0], columns=numeric_features)
    x = x.astype(np.float32)
    splits = [Split(torch.from_numpy(x[i]), torch.from_numpy(y[i])) for i in parts]
    return Task(
        name,
        "survival",
        InputSpec("vector", (int(x.shape[1]),)),
        *splits,
        feature_names=feature_names,
        aux_classes=aux_classes,
        aux_weight=aux_weight,
        options=options,
    )
