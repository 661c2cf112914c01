"""Auxiliary losses that layers add to the training objective (e.g. MoE load balancing).

A layer that wants a term added sets ``self.aux_loss`` (a scalar tensor) in its training-mode
forward and ``None`` otherwise; :func:`collect_aux_loss` sums whatever the last forward left.
The trainer (:func:`archsmith.train.fit`) adds that sum to the task loss, so any block that
carries such a layer trains correctly without the block knowing about it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["collect_aux_loss", "training_loss"]


def collect_aux_loss(model: nn.Module) -> torch.Tensor | None:
    """Sum of the ``aux_loss`` tensors that ``model``'s submodules set in their last forward,
    or None when none did."""
    total: torch.Tensor | None = None
    for module in model.modules():
        term = getattr(module, "aux_loss", None)
        if isinstance(term, torch.Tensor):
            total = term if total is None else total + term
    return total


def training_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, task_loss: LossFn
) -> torch.Tensor:
    """The objective of one training batch: the model's own ``training_loss(x, y, task_loss)``
    when it defines one (early-exit networks train every exit and their gate jointly), else
    ``task_loss(model(x), y)``; plus the auxiliary losses its layers set."""
    own = getattr(model, "training_loss", None)
    loss: torch.Tensor = own(x, y, task_loss) if callable(own) else task_loss(model(x), y)
    aux = collect_aux_loss(model)
    return loss if aux is None else loss + aux
