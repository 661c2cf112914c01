"""Evaluation metrics over a whole split's outputs, one family per task kind.

Every function returns plain Python floats. Where a metric is undefined (no labelled position,
a survival split without events), the value is ``nan`` rather than an exception, so an
evaluation loop can still report the other numbers.
"""

from __future__ import annotations

import math

import numpy as np
from torch import Tensor

from archsmith.tasks.losses import IGNORE_INDEX, as_scores, split_survival_output

__all__ = ["accuracy", "c_index", "regression_metrics", "sequence_accuracy"]


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
