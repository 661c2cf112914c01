"""Arrays -> a classification or regression :class:`Task` (shared by ``csv:`` and ``npz:``).

Classification labels become ``0 .. C-1`` in the sorted order of the original labels, which the
task keeps in ``task.classes``; the split is stratified on them. Regression targets are
standardized with the train split's mean and standard deviation (``task.target_mean``,
``task.target_std``), which the metrics undo so ``rmse`` is in the original units.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from archsmith.errors import ArchsmithError
from archsmith.tasks.base import InputSpec, Split, Task
from archsmith.tasks.splits import split_indices
from archsmith.tasks.standardize import fit_standardizer, standardize_splits

__all__ = ["MAX_INFERRED_CLASSES", "MIN_ROWS", "SupervisedKind", "infer_kind", "supervised_task"]

SupervisedKind = Literal["classification", "regression"]

#: An integer-valued numeric target with at most this many distinct values is taken for labels.
MAX_INFERRED_CLASSES = 20
#: Fewest rows that still give every split a sample or more.
MIN_ROWS = 10


def infer_kind(y: np.ndarray) -> SupervisedKind:
    """``classification`` for non-numeric ``y`` ``[N]`` or integer values with at most
    :data:`MAX_INFERRED_CLASSES` distinct ones; ``regression`` otherwise."""
    if y.dtype.kind not in "biuf":
        return "classification"
    if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
        return "regression"
    return "classification" if np.unique(y).size <= MAX_INFERRED_CLASSES else "regression"


def supervised_task(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    *,
    kind: SupervisedKind,
    input_kind: Literal["vector", "image"],
    split_seed: int,
    standardize: bool,
    numeric_features: np.ndarray | None = None,
    feature_names: tuple[str, ...] | None = None,
    target_name: str = "y",
) -> Task:
    """Build the task from features and targets.

    Args:
        x: ``[N, F]`` (vector) or ``[N, C, H, W]`` (image) numbers.
        y: ``[N]`` targets: numbers for regression; numbers or strings for classification.
        standardize: standardize ``x`` with train statistics: per feature for vectors (only the
            ``numeric_features`` mask where given), per channel for images.
        target_name: how errors name the target (``"'d.csv' target column 'label'"``).
    """
    classes: tuple[object, ...] | None = None
    if kind == "classification":
        values, labels = np.unique(y, return_inverse=True)
        if values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0):
            values = values.astype(np.int64)  # 0.0/1.0 read from text are the labels 0/1
        classes = tuple(v.item() if isinstance(v, np.generic) else v for v in values)
        if len(classes) < 2:
            raise ArchsmithError(
                f"{target_name} has a single class {classes[0]!r}: classification needs at least 2"
            )
        target = labels.reshape(-1).astype(np.int64)
        parts = split_indices(len(target), stratify=target, seed=split_seed)
        mean, std = 0.0, 1.0
    else:
        if y.dtype.kind not in "biuf":
            raise ArchsmithError(f"{target_name} is not numeric: cannot use it for regression")
        raw = y.astype(np.float64)
        parts = split_indices(len(raw), seed=split_seed)
        m, s = fit_standardizer(raw[parts[0]])
        mean, std = float(m.item()), float(s.item())
        target = ((raw - mean) / std).astype(np.float32)

    if standardize:
        axis: int | tuple[int, ...] = (0, 2, 3) if input_kind == "image" else 0
        x = standardize_splits(x, parts[0], axis=axis, columns=numeric_features)
    x = x.astype(np.float32)
    splits = [Split(torch.from_numpy(x[i]), torch.from_numpy(target[i])) for i in parts]
    return Task(
        name,
        kind,
        InputSpec(input_kind, tuple(int(d) for d in x.shape[1:])),
        *splits,
        num_outputs=len(classes) if classes is not None else 1,
        target_mean=mean,
        target_std=std,
        classes=classes,
        feature_names=feature_names,
    )
