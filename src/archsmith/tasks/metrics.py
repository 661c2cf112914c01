"""Evaluation metrics over a whole split's outputs, one family per task kind.

Every function returns plain Python floats. Where a metric is undefined (no labelled position,
a survival split without events), the value is ``nan`` rather than an exception, so an
evaluation loop can still report the other numbers.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from archsmith.tasks.losses import (
    IGNORE_INDEX,
    as_scores,
    segmentation_loss,
    split_survival_output,
)

__all__ = [
    "accuracy",
    "c_index",
    "dice_iou",
    "regression_metrics",
    "segmentation_metrics",
    "sequence_accuracy",
]


def accuracy(output: Tensor, target: Tensor) -> float:
    """Fraction (0..1) of samples whose argmax over logits ``output`` ``[N, C]`` equals
    ``target`` ``[N]``."""
    if target.numel() == 0:
        return math.nan
    return float((output.argmax(dim=-1) == target).double().mean())


def sequence_accuracy(output: Tensor, target: Tensor) -> float:
    """Accuracy of per-position logits ``output`` ``[N, T, V]`` over the positions of
    ``target`` ``[N, T]`` that are not :data:`~archsmith.tasks.losses.IGNORE_INDEX`."""
    keep = target != IGNORE_INDEX
    if not bool(keep.any()):
        return math.nan
    return float((output.argmax(dim=-1)[keep] == target[keep]).double().mean())


def regression_metrics(output: Tensor, target: Tensor, scale: float = 1.0) -> dict[str, float]:
    """``rmse`` and ``r2`` of ``output`` ``[N]``/``[N, 1]`` against ``target`` ``[N]``.

    Both are computed on standardized values; ``rmse`` is multiplied by ``scale`` (the train
    standard deviation of the target) to be in the original units, while ``r2`` does not change
    under the affine standardization. A constant target gives ``r2 = 1`` for a perfect fit and
    0 otherwise (scikit-learn's convention).
    """
    n = target.shape[0]
    if n == 0:
        return {"rmse": math.nan, "r2": math.nan}
    pred = as_scores(output, n, "regression").double()
    y = target.double()
    ss_res = float(((pred - y) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    rmse = math.sqrt(ss_res / n) * scale
    constant_target_r2 = 1.0 if ss_res == 0 else 0.0
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else constant_target_r2
    return {"rmse": rmse, "r2": r2}


def c_index(output: Tensor, target: Tensor) -> float:
    """Harrell's concordance index of risk scores ``output`` ``[N]``/``[N, 1]`` (higher = earlier
    event) against ``target`` ``[N, 2]`` = (time, event), by scikit-survival's
    ``concordance_index_censored``. ``nan`` when it is undefined (no events, no comparable
    pairs, non-finite scores)."""
    # late: scikit-survival is slow to import and only survival tasks need it
    from sksurv.exceptions import NoComparablePairException
    from sksurv.metrics import concordance_index_censored

    risk = split_survival_output(output, target)[0].double().cpu().numpy()
    y = target.double().cpu().numpy()
    event = y[:, 1] > 0.5
    if not event.any() or not np.isfinite(risk).all():
        return math.nan
    try:
        return float(concordance_index_censored(event, y[:, 0], risk)[0])
    except NoComparablePairException:
        return math.nan


def dice_iou(pred: Tensor, target: Tensor, num_classes: int) -> tuple[list[float], list[float]]:
    """Per-class Dice ``2|P & G| / (|P| + |G|)`` and IoU ``|P & G| / |P | G|`` of label maps
    ``pred`` and ``target`` (same shape, every voxel pooled) for classes ``0 .. K-1``; ``nan``
    for a class absent from both."""
    p = pred.reshape(-1)
    g = target.reshape(-1)
    # [K, K] confusion counts in one pass: row = true class, column = predicted class
    confusion = torch.bincount(g * num_classes + p, minlength=num_classes**2)
    confusion = confusion.reshape(num_classes, num_classes).double()
    inter = confusion.diagonal()
    pred_count, true_count = confusion.sum(0), confusion.sum(1)
    dice = [
        float(2 * i / (a + b)) if a + b > 0 else math.nan
        for i, a, b in zip(inter, pred_count, true_count, strict=True)
    ]
    iou = [
        float(i / (a + b - i)) if a + b > 0 else math.nan
        for i, a, b in zip(inter, pred_count, true_count, strict=True)
    ]
    return dice, iou


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def segmentation_metrics(output: Tensor, target: Tensor) -> dict[str, float]:
    """``dice`` and ``iou``: means over the foreground classes (1 .. K-1) present in prediction
    or truth, every voxel of the split pooled; ``voxel_accuracy``: share of voxels labelled
    right. ``output: [N, K, *S]`` logits, ``target: [N, *S]`` labels."""
    segmentation_loss(output, target)  # shape check only
    if target.numel() == 0:
        return {"dice": math.nan, "iou": math.nan, "voxel_accuracy": math.nan}
    pred = output.argmax(dim=1)
    dice, iou = dice_iou(pred, target, output.shape[1])
    return {
        "dice": _nanmean(dice[1:]),
        "iou": _nanmean(iou[1:]),
        "voxel_accuracy": float((pred == target).double().mean()),
    }
