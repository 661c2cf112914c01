"""Cox proportional-hazards loss: the negative partial log-likelihood with Breslow ties.

Cox (1972), "Regression models and life-tables"; Breslow (1974) for tied event times. With risk
scores ``r`` (log hazard ratios), the Breslow partial log-likelihood is

    log L = sum over events i of [ r_i - log sum_{j : t_j >= t_i} exp(r_j) ]

Every subject whose time is at least ``t_i`` (tied ones included) is in ``i``'s risk set, and
tied events each contribute their own term against the same risk set.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["cox_ph_loss"]


def cox_ph_loss(risk: Tensor, time: Tensor, event: Tensor) -> Tensor:
    """Mean negative Cox partial log-likelihood over the events of a batch (Breslow ties).

    Args:
        risk: ``[N]`` or ``[N, 1]`` predicted log hazard ratios (higher = earlier event).
        time: ``[N]`` observed times (event or censoring).
        event: ``[N]`` 1 where the event was observed, 0 where censored.

    Returns:
        A scalar: ``-log L / number of events``. A batch without events gives 0, still attached
        to ``risk``'s graph so ``backward()`` works (and yields zero gradients).

    Runs in ``O(N log N)``: one sort by time and one cumulative log-sum-exp, no loop.
    """
    risk = risk.reshape(-1)
    time = time.reshape(-1).to(risk.device)
    event = event.reshape(-1).to(device=risk.device, dtype=risk.dtype)
    if not (risk.shape == time.shape == event.shape):
        raise ValueError(
            f"risk, time and event must have one value per sample, got "
            f"{list(risk.shape)}, {list(time.shape)}, {list(event.shape)}"
        )
    order = torch.argsort(time, stable=True)  # ascending time
    t, r, e = time[order].contiguous(), risk[order], event[order]
    # log sum_{k >= j} exp(r_k) over the ascending order: the suffix that starts at j.
    suffix_lse = torch.logcumsumexp(r.flip(0), dim=0).flip(0)  # [N]
    # Tied times share one risk set that starts at the FIRST sample of their tie group.
    first = torch.searchsorted(t, t, right=False)  # [N]
    log_risk_set = suffix_lse[first]  # [N]
    log_lik = (e * (r - log_risk_set)).sum()
    # clamp_min: no events -> 0 / 1 = 0, and the graph is kept through the sum above.
    return -log_lik / e.sum().clamp_min(1.0)
