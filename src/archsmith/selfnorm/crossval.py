"""Cross-validation for survival models: raw arrays, stratified folds and per-fold tasks.

The registered ``breast-cancer-survival`` task standardizes its features once, with the
statistics of its own fixed train split. Cross-validation needs the features *before* that
step, so that every fold can be standardized with its own training part only (the test fold
must not leak into the means and standard deviations a model is trained on). This module gives

- :func:`survival_arrays` — ``(x, time, event, numeric)`` of a data set scikit-survival ships,
  one-hot encoded but **not** standardized;
- :func:`survival_folds` — ``K`` disjoint test folds covering every sample, stratified on the
  event indicator (each fold keeps the data's share of observed events);
- :func:`inner_split` — a stratified validation part carved out of a fold's training part (for
  early stopping or choosing a penalty);
- :func:`fold_task` — an archsmith survival :class:`~archsmith.tasks.Task` for one fold, its
  numeric features standardized with that fold's training statistics.

Example::

    data = survival_arrays("gbsg2")
    for train_idx, test_idx in survival_folds(data.time, data.event, n_folds=5, seed=0):
        fit_idx, val_idx = inner_split(train_idx, data.event, seed=0)
        task = fold_task(data, fit_idx, val_idx, test_idx, name="gbsg2")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.tasks.base import InputSpec, Split, Task
from archsmith.tasks.standardize import standardize_splits
from archsmith.tasks.tabular import encode_features

__all__ = [
    "SURVIVAL_DATASETS",
    "SurvivalArrays",
    "fold_task",
    "inner_split",
    "survival_arrays",
    "survival_folds",
]


class SurvivalArrays(NamedTuple):
    """A right-censored survival data set as plain arrays.

    Attributes:
        x: ``[N, F]`` float64 features: numeric columns as they are, categorical ones one-hot
            (one 0/1 indicator per declared category); **not** standardized.
        time: ``[N]`` float64 observed times (event or censoring).
        event: ``[N]`` bool, True where the event was observed.
        numeric: ``[F]`` bool mask of the numeric features (the ones to standardize).
    """

    x: np.ndarray
    time: np.ndarray
    event: np.ndarray
    numeric: np.ndarray


def _load_breast_cancer() -> tuple[Any, np.ndarray]:
    from sksurv.datasets import load_breast_cancer  # late: scikit-survival is slow to import

    return load_breast_cancer()


def _load_gbsg2() -> tuple[Any, np.ndarray]:
    from sksurv.datasets import load_gbsg2

    return load_gbsg2()


#: name -> loader of ``(features frame, structured (event, time) array)``; all ship with
#: scikit-survival, so nothing is downloaded
_LOADERS: dict[str, Callable[[], tuple[Any, np.ndarray]]] = {
    # 198 patients, 76 gene-expression values + 4 clinical columns; time to distant metastasis
    "breast-cancer-survival": _load_breast_cancer,
    # German Breast Cancer Study Group 2: 686 patients, 8 clinical columns; recurrence-free
    # survival (Schumacher et al., 1994)
    "gbsg2": _load_gbsg2,
}

#: the data sets :func:`survival_arrays` knows
SURVIVAL_DATASETS: tuple[str, ...] = tuple(_LOADERS)


def survival_arrays(name: str) -> SurvivalArrays:
    """The survival data set ``name`` (one of :data:`SURVIVAL_DATASETS`) as arrays.

    Categorical columns are one-hot encoded with all their declared categories, exactly as the
    ``breast-cancer-survival`` task encodes them; nothing is standardized (see :func:`fold_task`).
    """
    if name not in _LOADERS:
        raise ArchsmithError(
            f"unknown survival data set {name!r}{did_you_mean(name, SURVIVAL_DATASETS)}; "
            f"known: {', '.join(SURVIVAL_DATASETS)}"
        )
    frame, outcome = _LOADERS[name]()
    x, _, numeric = encode_features(frame)
    # The structured array's fields are (event: bool, time: float); find them by type, not order.
    fields = outcome.dtype.names
    assert fields is not None
    event_field = next(f for f in fields if outcome.dtype[f] == np.bool_)
    time_field = next(f for f in fields if f != event_field)
    time = np.asarray(outcome[time_field], dtype=np.float64)
    event = np.asarray(outcome[event_field], dtype=bool)
    return SurvivalArrays(x.astype(np.float64), time, event, numeric)


def survival_folds(
    time: np.ndarray, event: np.ndarray, n_folds: int = 5, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_folds`` ``(train_idx, test_idx)`` pairs of shuffled K-fold CV, stratified on ``event``.

    Args:
        time: ``[N]`` observed times (only its length is used; folds stratify on ``event``).
        event: ``[N]`` event indicators (bool or 0/1).
        n_folds: number of folds K (at least 2, at most the number of events and of censored
            samples, so that every test fold has both).
        seed: shuffling seed; the same seed always gives the same folds.

    Returns:
        K pairs of int64 index arrays: the test parts are disjoint and together cover
        ``range(N)``; each train part is the complement of its test part.
    """
    from sklearn.model_selection import StratifiedKFold  # late: scikit-learn is slow to import

    event = np.asarray(event).reshape(-1).astype(bool)
    n = event.shape[0]
    if np.asarray(time).reshape(-1).shape[0] != n:
        raise ValueError(f"time has {np.asarray(time).size} values but event has {n}")
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    kfold = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    return [
        (train.astype(np.int64), test.astype(np.int64))
        for train, test in kfold.split(np.zeros((n, 1)), event)
    ]


def inner_split(
    train_idx: np.ndarray, event: np.ndarray, val_fraction: float = 0.15, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split a fold's ``train_idx`` into ``(fit_idx, val_idx)``, stratified on ``event``.

    ``val_idx`` holds ``val_fraction`` of ``train_idx`` (rounded up, scikit-learn's rule) with
    the same share of events; both are subsets of ``train_idx`` and disjoint.
    """
    from sklearn.model_selection import train_test_split

    train_idx = np.asarray(train_idx, dtype=np.int64)
    labels = np.asarray(event).reshape(-1).astype(bool)[train_idx]
    fit_idx, val_idx = train_test_split(
        train_idx, test_size=val_fraction, stratify=labels, random_state=seed
    )
    return np.asarray(fit_idx, dtype=np.int64), np.asarray(val_idx, dtype=np.int64)


def fold_task(
    data: SurvivalArrays,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    test_idx: np.ndarray,
    *,
    name: str = "survival-fold",
    standardize: str = "numeric",
) -> Task:
    """An archsmith survival task made of one fold's ``train`` / ``val`` / ``test`` rows.

    Features are standardized with the means and standard deviations of ``x[train_idx]`` only
    (the ``val`` and ``test`` rows never enter them).

    Args:
        data: the unstandardized arrays (:func:`survival_arrays`).
        train_idx, val_idx, test_idx: row indices of the three splits.
        name: the task's name (it appears in specs and progress bars; such a task is not
            rebuildable by :func:`~archsmith.tasks.get_task`).
        standardize: ``"numeric"`` (default, as the registered task does: one-hot indicators
            stay 0/1), ``"all"`` (indicators too) or ``"none"``.

    Returns:
        A ``"survival"`` :class:`Task`: ``x`` ``[n, F]`` float32, ``y`` ``[n, 2]`` float32
        columns ``(time, event)``.
    """
    if standardize not in ("numeric", "all", "none"):
        raise ValueError(f"standardize must be 'numeric', 'all' or 'none', got {standardize!r}")
    train_idx, val_idx, test_idx = (
        np.asarray(i, dtype=np.int64) for i in (train_idx, val_idx, test_idx)
    )
    x = data.x
    if standardize != "none":
        columns = data.numeric if standardize == "numeric" else None
        x = standardize_splits(x, train_idx, columns=columns)
    x32 = x.astype(np.float32)
    y = np.stack([data.time, data.event.astype(np.float64)], axis=1).astype(np.float32)
    splits = [
        Split(torch.from_numpy(x32[i]), torch.from_numpy(y[i]))
        for i in (train_idx, val_idx, test_idx)
    ]
    return Task(
        name,
        "survival",
        InputSpec("vector", (x.shape[1],)),
        *splits,
        description=f"cross-validation fold of {name}",
    )
