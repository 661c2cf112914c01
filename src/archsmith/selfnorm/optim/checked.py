"""A torch optimizer whose hyper-parameters are validated for the defaults and every group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim.optimizer import Optimizer, ParamsT

from archsmith.errors import ArchsmithError

__all__ = ["CheckedOptimizer", "check_shared"]


def check_shared(optimizer: str, group: dict[str, Any]) -> None:
    """The checks AdamP and SGDP share: ``lr``, ``eps``, ``weight_decay``, ``delta`` and
    ``wd_ratio`` must be >= 0 (NaN rejected) and ``nesterov`` a bool. Raises
    :class:`ArchsmithError` (a ``ValueError``) naming the first bad one."""
    for key in ("lr", "eps", "weight_decay", "delta", "wd_ratio"):
        if not group[key] >= 0.0:  # `not >=` also rejects NaN
            raise ArchsmithError(f"{optimizer}: {key} must be >= 0, got {group[key]}")
    if not isinstance(group["nesterov"], bool):
        raise ArchsmithError(f"{optimizer}: nesterov must be a bool, got {group['nesterov']!r}")


class CheckedOptimizer(Optimizer):
    """Base of AdamP and SGDP: ``check_group`` vets the defaults before anything else and every
    group added later, so a bad value fails at once with one clear message instead of deep
    inside ``step``.
    """

    def __init__(
        self,
        params: ParamsT,
        defaults: dict[str, Any],
        check_group: Callable[[dict[str, Any]], None],
    ) -> None:
        check_group(defaults)
        # set before the base class adds the first groups through add_param_group
        self._check_group = check_group
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group, checking its hyper-parameters (the defaults fill the missing ones)."""
        self._check_group({**self.defaults, **param_group})
        super().add_param_group(param_group)

    @staticmethod
    def closure_loss(closure: Callable[[], float] | None) -> float | None:
        """Evaluate ``closure`` with gradients on (``step`` itself runs under no_grad)."""
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()
