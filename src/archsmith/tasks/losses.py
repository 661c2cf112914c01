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
    "segmentation_loss",
    "sequence_loss",
    "split_survival_output",
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


def split_survival_output(output: Tensor, target: Tensor) -> tuple[Tensor, Tensor | None]:
    """``(risk [N], class logits [N, C] or None)`` of a survival model's ``output``.

    Without an auxiliary label (``target`` ``[N, 2]``) the output is the risk score ``[N]`` or
    ``[N, 1]``; with one (``target`` ``[N, 3]`` = (time, event, class)) it is ``[N, 1 + C]``:
    the log-risk in column 0, then the class logits (SeNMo's joint survival + classification
    heads).
    """
    n = target.shape[0]
    if target.dim() == 2 and target.shape[1] == 3:
        if output.dim() != 2 or output.shape[0] != n or output.shape[1] < 2:
            raise ArchsmithError(
                f"survival output with an auxiliary label must have shape [{n}, 1 + classes], "
                f"got {list(output.shape)}"
            )
        return output[:, 0], output[:, 1:]
    return as_scores(output, n, "survival"), None


def survival_loss(output: Tensor, target: Tensor, aux_weight: float = 1.0) -> Tensor:
    """Cox loss of risk scores ``output`` ``[N]``/``[N, 1]``; ``target`` ``[N, 2]`` = (time, event).

    With an auxiliary class label (``target`` ``[N, 3]``, ``output`` ``[N, 1 + C]``) the
    cross-entropy of the class logits, times ``aux_weight``, is added: the classification head
    trained jointly with the Cox head (SeNMo, Waqas et al., 2024).
    """
    risk, logits = split_survival_output(output, target)
    loss = cox_ph_loss(risk, target[:, 0], target[:, 1])
    if logits is not None:
        loss = loss + aux_weight * F.cross_entropy(logits, target[:, 2].long())
    return loss


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


def segmentation_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean per-voxel cross-entropy of logits ``output: [N, K, *S]`` against labels
    ``target: [N, *S]``."""
    if output.dim() != target.dim() + 1 or output.shape[2:] != target.shape[1:]:
        raise ArchsmithError(
            f"segmentation output must have shape [{target.shape[0]}, classes, "
            f"{', '.join(map(str, target.shape[1:]))}], got {list(output.shape)}"
        )
    return F.cross_entropy(output, target)
