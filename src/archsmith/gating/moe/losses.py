"""Auxiliary router losses: load balancing (Switch/GShard) and the router z-loss (ST-MoE)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["load_balancing_loss", "router_z_loss"]


def load_balancing_loss(probs: Tensor, expert_ids: Tensor, mask: Tensor | None = None) -> Tensor:
    """``E * sum_e f_e * P_e`` (Fedus et al., 2021, Switch Transformers; Lepikhin et al., 2020).

    Args:
        probs: ``[N, E]`` router softmax over all experts; ``P_e`` is its mean over tokens
            (differentiable: the loss moves probability toward under-used experts).
        expert_ids: ``[N, K]`` chosen experts; ``f_e`` is the fraction of all (used)
            assignments that went to ``e``, before capacity dropping (a count: no gradient).
        mask: ``[N, K]`` used choices (None: all).

    Returns:
        A scalar, 1 when routing is perfectly uniform, up to E when one expert takes all.
    """
    num_experts = probs.shape[-1]
    ids = expert_ids if mask is None else expert_ids[mask]
    counts = torch.bincount(ids.reshape(-1), minlength=num_experts).to(probs.dtype)
    f = counts / counts.sum().clamp_min(1)
    p = probs.mean(dim=0)
    return num_experts * (f * p).sum()


def router_z_loss(logits: Tensor) -> Tensor:
    """``mean_n logsumexp(logits[n])^2`` (Zoph et al., 2022, ST-MoE): keeps router logits small.

    Args:
        logits: ``[N, E]`` router logits.
    """
    return torch.logsumexp(logits, dim=-1).square().mean()
