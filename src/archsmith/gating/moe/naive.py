"""Readable reference of the MoE layer: loops over tokens and their choices, straight from the
equations, for tests of the sort-based dispatch (:mod:`archsmith.gating.moe.dispatch`).

For token ``n`` with choices ``j = 0..k-1`` (experts ``e_nj``, weights ``g_nj``):
``y_n = sum_j [kept(n, j)] g_nj * E_{e_nj}(x_n)``, where an assignment is kept when fewer than
``capacity = ceil(capacity_factor * assignments / E)`` earlier assignments (in choice-major
order: all first choices, then all second choices, ...) went to the same expert.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsmith.gating.moe.layer import MoE
from archsmith.gating.moe.router import NoisyTopKRouter

__all__ = ["naive_dispatch", "naive_moe", "naive_top_k_gate"]


def naive_top_k_gate(
    layer: MoE, x: Tensor, eps: Tensor | None = None
) -> tuple[list[list[int]], list[list[Tensor]]]:
    """Per token, the top-k experts and their softmax-over-top-k weights, one token at a time.

    Uses the router's weights (``topk``; or ``noisy_topk`` with the noise ``eps: [N, E]`` when
    the router is in training mode), not its code.
    """
    router = layer.router
    k = int(router.top_k)
    ids, weights = [], []
    for i in range(x.shape[0]):
        h = router.gate.weight @ x[i]  # [E]
        if eps is not None and router.training and isinstance(router, NoisyTopKRouter):
            h = h + eps[i] * F.softplus(router.noise.weight @ x[i])
        order = sorted(range(h.shape[0]), key=lambda e: float(h[e].detach()), reverse=True)
        top = order[:k]
        z = torch.stack([h[e] for e in top])
        g = torch.exp(z - z.max())
        ids.append(top)
        weights.append(list(g / g.sum()))
    return ids, weights


def naive_dispatch(
    x: Tensor,
    experts: Sequence[nn.Module],
    ids: list[list[int]],
    weights: list[list[Tensor]],
    used: list[list[bool]] | None = None,
    capacity_factor: float | None = None,
) -> tuple[Tensor, int, int]:
    """``(y: [N, D_out], dropped_assignments, dropped_tokens)`` by a loop over tokens."""
    n = x.shape[0]
    k = max(len(row) for row in ids)
    used = used or [[True] * len(row) for row in ids]
    assignments = sum(sum(row) for row in used)
    capacity = (
        None if capacity_factor is None else math.ceil(capacity_factor * assignments / len(experts))
    )
    load = [0] * len(experts)
    outputs: list[Tensor | None] = [None] * n
    dropped, served = 0, [False] * n
    for j in range(k):  # every first choice before any second choice
        for i in range(n):
            if j >= len(ids[i]) or not used[i][j]:
                continue
            e = ids[i][j]
            if capacity is not None and load[e] >= capacity:
                dropped += 1
                continue
            load[e] += 1
            served[i] = True
            term = weights[i][j] * experts[e](x[i : i + 1])[0]
            prev = outputs[i]
            outputs[i] = term if prev is None else prev + term
    d_out = next((o.shape[0] for o in outputs if o is not None), x.shape[1])
    zero = x.new_zeros(d_out)
    return torch.stack([zero if o is None else o for o in outputs]), dropped, served.count(False)


def naive_moe(layer: MoE, x: Tensor, eps: Tensor | None = None) -> tuple[Tensor, int, int]:
    """``(y: [N, D], dropped_assignments, dropped_tokens)`` of a top-k ``layer`` on ``x: [N, D]``."""
    ids, weights = naive_top_k_gate(layer, x, eps)
    return naive_dispatch(x, list(layer.experts), ids, weights, None, layer.capacity_factor)
