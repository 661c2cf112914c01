"""A torch optimizer whose hyper-parameters are validated for the defaults and every group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch.optim.optimizer import Optimizer, ParamsT

__all__ = ["CheckedOptimizer"]


class CheckedOptimizer(Optimizer):
    """Base of AdamP and SGDP: ``check_group`` (a class attribute) vets the defaults before
    anything else and every group added later, so a bad value fails at once with one clear
    message instead of deep inside ``step``.
    """

    check_group: ClassVar[Callable[[dict[str, Any]], None]]

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        type(self).check_group(defaults)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group, checking its hyper-parameters (the defaults fill the missing ones)."""
        type(self).check_group({**self.defaults, **param_group})
        super().add_param_group(param_group)

    @staticmethod
    def closure_loss(closure: Callable[[], float] | None) -> float | None:
        """Evaluate ``closure`` with gradients on (``step`` itself runs under no_grad)."""
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()
