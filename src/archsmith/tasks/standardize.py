"""Standardization with training-split statistics.

Means and standard deviations come from the train split only and are then applied to all three
splits, so nothing about val/test leaks into the inputs a model is trained on.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_standardizer", "standardize_splits"]


def fit_standardizer(
    train: np.ndarray, axis: int | tuple[int, ...] = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` of ``train`` over ``axis`` (kept as size-1 dims for broadcasting).

    A constant feature gets ``std = 1`` so it maps to 0 instead of dividing by zero.
    """
    mean = train.mean(axis=axis, keepdims=True, dtype=np.float64)
    std = train.std(axis=axis, keepdims=True, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)
    return mean, std


def standardize_splits(
    x: np.ndarray,
    train_idx: np.ndarray,
    *,
    axis: int | tuple[int, ...] = 0,
    columns: np.ndarray | None = None,
) -> np.ndarray:
    """``x`` ``[N, ...]`` standardized with the statistics of ``x[train_idx]``, as float64.

    Args:
        axis: axes reduced for the statistics: ``0`` per feature of ``[N, F]`` vectors,
            ``(0, 2, 3)`` per channel of ``[N, C, H, W]`` images.
        columns: ``[F]`` boolean mask of the ``[N, F]`` columns to standardize (the others,
            e.g. one-hot indicators, are left as they are). ``None`` = all.
    """
    out = x.astype(np.float64, copy=True)
    if columns is None:
        mean, std = fit_standardizer(out[train_idx], axis)
        return (out - mean) / std
    if columns.any():
        mean, std = fit_standardizer(out[train_idx][:, columns], axis)
        out[:, columns] = (out[:, columns] - mean) / std
    return out
