"""Training losses, one per task kind (see :class:`~archsmith.tasks.Task`).

A model whose output has the wrong shape for its task is a user mistake (a spec that does not
fit the task), so shape problems raise :class:`ArchsmithError` in one line.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from archsmith.errors import ArchsmithError
from archsmith.tasks.survival_loss import cox_ph_loss

__all__ = [
    "IGNORE_INDEX",
    "as_scores",
    "classification_loss",
    "regression_loss",
    "sequence_loss",
    "survival_loss",
]

#: Target value for positions that carry no label (sequence tasks).
IGNORE_INDEX = -100


def as_scores(output: Tensor, n: int, what: str) -> Tensor:
    """``output`` ``[N]`` or ``[N, 1]`` as ``[N]``; anything else raises naming ``what``."""
    if output.shape not in ((n,), (n, 1)):
        raise ArchsmithError(
            f"{what} output must have shape [{n}] or [{n}, 1], got {list(output.shape)}"
        )
    return output.reshape(n)


def classification_loss(output: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of logits ``output`` ``[N, C]`` against class ids ``target`` ``[N]``."""
    if output.dim() != 2 or output.shape[0] != target.shape[0]:
        raise ArchsmithError(
            f"classification output must have shape [{target.shape[0]}, classes], "
            f"got {list(output.shape)}"
        )
    return F.cross_entropy(output, target)


def regression_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean squared error of ``output`` ``[N]``/``[N, 1]`` against standardized ``target`` ``[N]``."""
    pred = as_scores(output, target.shape[0], "regression")
    return F.mse_loss(pred, target.to(pred.dtype))


def survival_loss(output: Tensor, target: Tensor) -> Tensor:
    """Cox loss of risk scores ``output`` ``[N]``/``[N, 1]``; ``target`` ``[N, 2]`` = (time, event)."""
    risk = as_scores(output, target.shape[0], "survival")
    return cox_ph_loss(risk, target[:, 0], target[:, 1])


def sequence_loss(output: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of per-position logits ``output`` ``[N, T, V]`` against ``target``
    ``[N, T]``, skipping positions marked :data:`IGNORE_INDEX`."""
    if output.dim() != 3 or output.shape[:2] != target.shape:
        raise ArchsmithError(
            f"sequence output must have shape [{', '.join(map(str, target.shape))}, vocab], "
            f"got {list(output.shape)}"
        )
    return F.cross_entropy(
        output.reshape(-1, output.shape[-1]), target.reshape(-1), ignore_index=IGNORE_INDEX
    )
