"""Sort-based dispatch of tokens to experts, with a capacity limit, and the weighted combine.

The fast path of :class:`~archsmith.gating.moe.MoE` (its readable reference is
:func:`archsmith.gating.moe.naive.naive_moe`):

1. flatten the routing into assignments (token, expert, weight), choice-major: every token's
   first choice, then every token's second choice, ... (GShard's priority: a token's first
   choice is served before anyone's second);
2. one stable sort by expert id, so each expert's assignments form one contiguous slice, in
   priority order;
3. an assignment whose rank inside its expert's slice is ``>= capacity`` is dropped (it
   contributes zero; the block's residual carries the token on);
4. gather the kept tokens once (``index_select``), run each expert on its contiguous slice (a
   loop over experts, never over tokens), scale by the weights and scatter-add the results back
   (``index_add``).

No padding: each expert multiplies exactly the rows it was given, so the arithmetic is that of
a dense layer with the same active parameters plus one gather and one scatter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["DispatchStats", "capacity_of", "moe_dispatch"]


@dataclass(frozen=True)
class DispatchStats:
    """What one dispatch did.

    Attributes:
        tokens: N.
        assignments: (token, expert) pairs the router asked for (``N * k`` for top-k).
        capacity: the per-expert limit (None: unlimited).
        dropped_assignments: pairs over an expert's capacity, not computed.
        dropped_tokens: tokens all of whose assignments were dropped (their MoE output is 0).
        expert_load: assignments each expert computed, after dropping, ``[E]`` as a list.
    """

    tokens: int
    assignments: int
    capacity: int | None
    dropped_assignments: int
    dropped_tokens: int
    expert_load: list[int]

    def as_dict(self) -> dict[str, int | list[int] | None]:
        return {
            "tokens": self.tokens,
            "assignments": self.assignments,
            "capacity": self.capacity,
            "dropped_assignments": self.dropped_assignments,
            "dropped_tokens": self.dropped_tokens,
            "expert_load": list(self.expert_load),
        }


def capacity_of(assignments: int, num_experts: int, capacity_factor: float | None) -> int | None:
    """``ceil(capacity_factor * assignments / num_experts)`` (None without a factor).

    With ``assignments = tokens * k`` this is the Switch/GShard capacity
    ``ceil(capacity_factor * tokens * k / E)``.
    """
    if capacity_factor is None:
        return None
    return math.ceil(capacity_factor * assignments / num_experts)


def moe_dispatch(
    x: Tensor,
    experts: Sequence[nn.Module],
    expert_ids: Tensor,
    weights: Tensor,
    mask: Tensor | None = None,
    capacity_factor: float | None = None,
) -> tuple[Tensor, DispatchStats]:
    """``y[n] = sum_j weights[n, j] * experts[expert_ids[n, j]](x[n])`` over kept assignments.

    Args:
        x: ``[N, D]`` tokens.
        experts: E modules ``[M, D] -> [M, D_out]``; each is called once (on 0 rows if it got
            nothing, so every expert's parameters take part in autograd).
        expert_ids: ``[N, K]`` long, the chosen experts (column ``j``: choice ``j``).
        weights: ``[N, K]`` combine weights.
        mask: ``[N, K]`` bool, which choices are used (None: all).
        capacity_factor: per-expert limit ``ceil(factor * assignments / E)`` (None: no limit).

    Returns:
        ``(y: [N, D_out], stats)``.
    """
    n, k = expert_ids.shape
    num_experts = len(experts)
    # choice-major flattening: index i = j * N + n
    flat_e = expert_ids.t().reshape(-1)
    flat_w = weights.t().reshape(-1)
    flat_tok = torch.arange(n, device=x.device).repeat(k)
    if mask is not None:
        keep_mask = mask.t().reshape(-1)
        flat_e, flat_w, flat_tok = flat_e[keep_mask], flat_w[keep_mask], flat_tok[keep_mask]
    assignments = int(flat_e.numel())
    capacity = capacity_of(assignments, num_experts, capacity_factor)

    order = torch.argsort(flat_e, stable=True)  # group by expert, priority order kept
    sorted_e = flat_e[order]
    counts = torch.bincount(flat_e, minlength=num_experts)  # [E]
    if capacity is not None:
        starts = torch.cumsum(counts, 0) - counts  # [E] first sorted position of each expert
        rank = torch.arange(assignments, device=x.device) - starts[sorted_e]
        order = order[rank < capacity]
        counts = counts.clamp(max=capacity)
    tok = flat_tok[order]  # [A_kept], grouped by expert
    w = flat_w[order]

    xs = x.index_select(0, tok)  # [A_kept, D]: one gather
    loads = counts.tolist()
    outs = [expert(chunk) for expert, chunk in zip(experts, xs.split(loads), strict=True)]
    ys = torch.cat(outs) * w.unsqueeze(-1).to(outs[0].dtype)  # [A_kept, D_out]
    y = ys.new_zeros(n, ys.shape[-1]).index_add(0, tok, ys)  # one scatter

    kept = int(tok.numel())
    served = torch.zeros(n, dtype=torch.bool, device=x.device)
    served[tok] = True
    stats = DispatchStats(
        tokens=n,
        assignments=assignments,
        capacity=capacity,
        dropped_assignments=assignments - kept,
        dropped_tokens=int(n - served.sum()),
        expert_load=[int(c) for c in loads],
    )
    return y, stats
