"""SGDP: SGD with momentum that removes the radial part of its update on scale-invariant weights.

Heo et al., "AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant
Weights", ICLR 2021 (arXiv:2006.08217), Algorithm 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, overload

import torch
from torch.optim.optimizer import ParamsT

from archsmith.errors import ArchsmithError
from archsmith.selfnorm.optim.checked import CheckedOptimizer, check_shared
from archsmith.selfnorm.optim.projection import project_if_scale_invariant

__all__ = ["SGDP"]


def _check_group(group: dict[str, Any]) -> None:
    """Raise :class:`ArchsmithError` (a ``ValueError``) naming the first bad hyperparameter."""
    check_shared("SGDP", group)
    momentum, dampening = group["momentum"], group["dampening"]
    # < 1: the decoupled decay is divided by (1 - momentum), and momentum >= 1 never forgets.
    if not 0.0 <= momentum < 1.0:
        raise ArchsmithError(f"SGDP: momentum must be in [0, 1), got {momentum}")
    if not 0.0 <= dampening <= 1.0:
        raise ArchsmithError(f"SGDP: dampening must be in [0, 1], got {dampening}")
    # Same rule as torch.optim.SGD: without momentum Nesterov is plain SGD, and with dampening
    # the look-ahead is no longer Nesterov's.
    if group["nesterov"] and (momentum <= 0.0 or dampening != 0.0):
        raise ArchsmithError(
            f"SGDP: nesterov=True needs momentum > 0 and dampening = 0, "
            f"got momentum={momentum}, dampening={dampening}"
        )


class SGDP(CheckedOptimizer):
    r"""SGD with projection of the update for scale-invariant weights (Heo et al., ICLR 2021).

    Momentum accumulates past gradients that were orthogonal to *past* weights; relative to the
    current weight the buffer has a radial component that inflates ``||w||`` and so shrinks the
    effective step ``lr / ||w||^2`` of scale-invariant weights. SGDP removes that component from
    the applied update when the weight looks scale invariant (see
    :mod:`archsmith.selfnorm.optim.projection`). For every parameter ``w`` with gradient ``g``::

        b = momentum * b + (1 - dampening) * g    (b starts at 0)
        u = g + momentum * b if nesterov else b
        if ndim(w) > 1 and max |cos(g, w)| < delta / sqrt(dim) over the channel view,
        else the layer view:
            u = u - (w_hat . u) w_hat             (per row of that view)
            r = wd_ratio
        else r = 1
        w = w * (1 - lr * weight_decay * r / (1 - momentum))
        w = w - lr * u

    The weight decay is decoupled from the buffer (as in the paper's code) and divided by
    ``1 - momentum``: coupled L2 decay fed through momentum is amplified by that factor in
    steady state, so the same ``weight_decay`` means about the same strength as in
    ``torch.optim.SGD``. Only the applied update is projected; the buffer keeps the raw
    gradients, as in the paper's Algorithm 1 (``p_t`` accumulates, ``q_t`` is projected).

    With the projection never firing (``delta=0``), ``weight_decay=0`` and ``dampening=0`` this
    is exactly ``torch.optim.SGD`` (with or without momentum and Nesterov).

    Args:
        params: parameters or parameter groups, as for any :class:`torch.optim.Optimizer`.
        lr: learning rate (required).
        momentum: momentum factor in [0, 1) (default 0).
        dampening: dampening of the gradient in the buffer, in [0, 1] (default 0).
        weight_decay: decoupled weight decay coefficient (default 0).
        nesterov: Nesterov momentum; needs ``momentum > 0`` and ``dampening = 0`` (default False).
        eps: clamps norms in the cosine and is added to ``||w||`` in the projection (default 1e-8).
        delta: scale-invariance threshold, ``cos < delta / sqrt(dim)`` (default 0.1, the
            paper's); 0 turns the projection off.
        wd_ratio: weight decay multiplier on projected weights (default 0.1, the paper's).

    Raises:
        ValueError: (:class:`~archsmith.errors.ArchsmithError`) for an invalid hyperparameter,
            here or in :meth:`add_param_group`.
        RuntimeError: from :meth:`step` on a sparse gradient.

    State per parameter: ``momentum_buffer`` (like the parameter), only when ``momentum > 0``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        eps: float = 1e-8,
        delta: float = 0.1,
        wd_ratio: float = 0.1,
    ) -> None:
        defaults: dict[str, Any] = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "eps": eps,
            "delta": delta,
            "wd_ratio": wd_ratio,
        }
        super().__init__(params, defaults, _check_group)

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Take one SGDP step; ``closure`` (re-evaluates the loss, grads on) is optional.

        Returns the closure's loss, or ``None`` without a closure.
        """
        loss = self.closure_loss(closure)

        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError(
                        "SGDP does not support sparse gradients "
                        "(the projection needs dense dot products); use a dense gradient"
                    )
                if momentum != 0:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(
                            p, memory_format=torch.preserve_format
                        )
                    buf = state["momentum_buffer"]
                    buf.mul_(momentum).add_(grad, alpha=1.0 - dampening)
                    update = grad.add(buf, alpha=momentum) if group["nesterov"] else buf
                else:
                    update = grad if dampening == 0 else grad.mul(1.0 - dampening)

                # The projection returns a new tensor, so the buffer keeps the raw gradients
                # (the paper's p_t). The reference code projects it in place when not Nesterov.
                update, wd_scale, _ = project_if_scale_invariant(
                    p, grad, update, group["delta"], group["wd_ratio"], group["eps"]
                )
                if group["weight_decay"] != 0:
                    p.mul_(1.0 - lr * group["weight_decay"] * wd_scale / (1.0 - momentum))
                p.add_(update, alpha=-lr)

        return loss
