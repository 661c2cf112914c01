"""AdamP: Adam that removes the radial part of its update on scale-invariant weights.

Heo et al., "AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant
Weights", ICLR 2021 (arXiv:2006.08217), Algorithm 2.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, overload

import torch
from torch.optim.optimizer import ParamsT

from archsmith.errors import ArchsmithError
from archsmith.selfnorm.optim.checked import CheckedOptimizer, check_shared
from archsmith.selfnorm.optim.projection import project_if_scale_invariant

__all__ = ["AdamP"]


def _check_group(group: dict[str, Any]) -> None:
    """Raise :class:`ArchsmithError` (a ``ValueError``) naming the first bad hyperparameter."""
    check_shared("AdamP", group)
    betas = group["betas"]
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ArchsmithError(f"AdamP: betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ArchsmithError(f"AdamP: betas[{i}] must be in [0, 1), got {beta}")


class AdamP(CheckedOptimizer):
    r"""Adam with projection of the update for scale-invariant weights (Heo et al., ICLR 2021).

    Weights followed by a normalization layer are scale invariant, so their gradient is
    orthogonal to them; yet Adam's momentum and per-coordinate scaling add a *radial* component
    to the update that inflates ``||w||`` and so shrinks the effective step ``lr / ||w||^2``
    early in training. AdamP removes that component when the weight looks scale invariant (see
    :mod:`archsmith.selfnorm.optim.projection` for the test). For every parameter ``w`` with
    gradient ``g`` at step ``t``::

        m = b1 m + (1 - b1) g                     v = b2 v + (1 - b2) g^2
        d = sqrt(v / (1 - b2^t)) + eps
        u = m / d                                 (nesterov: u = (b1 m + (1 - b1) g) / d)
        if ndim(w) > 1 and max |cos(g, w)| < delta / sqrt(dim) over the channel view,
        else the layer view:
            u = u - (w_hat . u) w_hat             (per row of that view)
            r = wd_ratio
        else r = 1
        w = w * (1 - lr * weight_decay * r)       (decoupled, as AdamW)
        w = w - lr / (1 - b1^t) * u

    With the projection never firing (``delta=0``), this is exactly ``torch.optim.AdamW``
    (``torch.optim.Adam`` when ``weight_decay=0``). The projection and the invariance test use
    ``w`` before this step's decay.

    Args:
        params: parameters or parameter groups, as for any :class:`torch.optim.Optimizer`.
        lr: learning rate (default 1e-3).
        betas: decay rates of the first and second moment estimates (default (0.9, 0.999)).
        eps: added to the denominator; also clamps norms in the cosine and is added to ``||w||``
            in the projection (default 1e-8).
        weight_decay: decoupled weight decay coefficient (default 0).
        delta: scale-invariance threshold, ``cos < delta / sqrt(dim)`` (default 0.1, the
            paper's); 0 turns the projection off.
        wd_ratio: weight decay multiplier on projected weights (default 0.1, the paper's).
        nesterov: use the Nesterov form of the first moment (default False).

    Raises:
        ValueError: (:class:`~archsmith.errors.ArchsmithError`) for an invalid hyperparameter,
            here or in :meth:`add_param_group`.
        RuntimeError: from :meth:`step` on a sparse gradient.

    State per parameter: ``step`` (int), ``exp_avg`` and ``exp_avg_sq`` (like the parameter).
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        delta: float = 0.1,
        wd_ratio: float = 0.1,
        nesterov: bool = False,
    ) -> None:
        defaults: dict[str, Any] = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "delta": delta,
            "wd_ratio": wd_ratio,
            "nesterov": nesterov,
        }
        super().__init__(params, defaults, _check_group)

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Take one AdamP step; ``closure`` (re-evaluates the loss, grads on) is optional.

        Returns the closure's loss, or ``None`` without a closure.
        """
        loss = self.closure_loss(closure)

        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps = group["lr"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if grad.is_sparse:
                    raise RuntimeError(
                        "AdamP does not support sparse gradients "
                        "(the projection needs dense dot products); use a dense gradient"
                    )
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                t = state["step"]

                exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                # Bias corrections as in Adam: v's inside the root, m's folded into the step size.
                denom = (exp_avg_sq.sqrt() / math.sqrt(1.0 - beta2**t)).add_(eps)
                step_size = lr / (1.0 - beta1**t)
                if group["nesterov"]:
                    update = (exp_avg * beta1 + grad * (1.0 - beta1)) / denom
                else:
                    update = exp_avg / denom

                # The test and the projection use w before decay: the paper's Pi_{w_t}.
                update, wd_scale, _ = project_if_scale_invariant(
                    p, grad, update, group["delta"], group["wd_ratio"], eps
                )
                if group["weight_decay"] != 0:
                    p.mul_(1.0 - lr * group["weight_decay"] * wd_scale)
                p.add_(update, alpha=-step_size)

        return loss
