"""The inter-chunk recurrence of chunkwise GLA as one autograd function.

Chunk ``n`` turns the state ``S_{n-1}`` into ``S_n = diag(a_n) S_{n-1} + U_n`` (``a_n`` the
product of the chunk's gates, ``U_n`` the chunk's decayed ``K^T V``). The loop runs once per
chunk, not per token; writing its backward by hand (a reverse scan with the same decays) keeps
autograd from recording two nodes and a saved state per chunk.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["state_scan"]


class _StateScan(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, decay: torch.Tensor, update: torch.Tensor, initial: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # decay: [..., N, D], update: [..., N, D, Dv], initial: [..., D, Dv]
        n = update.shape[-3]
        before = torch.empty_like(update)  # [..., N, D, Dv]: S_{n-1}, the state chunk n reads
        state = initial
        for i in range(n):
            before[..., i, :, :] = state
            state = torch.addcmul(update[..., i, :, :], decay[..., i, :, None], state)
        ctx.save_for_backward(decay, before, state)
        return before, state

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_before: torch.Tensor, grad_final: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        decay, before, final = ctx.saved_tensors
        n = before.shape[-3]
        grad_update = torch.empty_like(before)
        # grad of S_n, accumulated backwards: S_n feeds chunk n+1 directly and S_{n+1} via decay
        grad_state = grad_final
        for i in range(n - 1, -1, -1):
            grad_update[..., i, :, :] = grad_state
            grad_state = torch.addcmul(grad_before[..., i, :, :], decay[..., i, :, None], grad_state)
        # d S_n / d a_n = S_{n-1} (row-wise): the decay's gradient sums over the value dim
        grad_decay = (grad_update * before).sum(-1)
        return grad_decay, grad_update, grad_state


def state_scan(
    decay: torch.Tensor, update: torch.Tensor, initial: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``S_n = decay_n[:, None] * S_{n-1} + update_n`` over the chunk axis.

    Args:
        decay: per-chunk row decays ``[..., N, D]`` (the gates' product over the chunk).
        update: per-chunk additions ``[..., N, D, Dv]``.
        initial: ``S_0: [..., D, Dv]``.

    Returns:
        ``(before: [..., N, D, Dv], final: [..., D, Dv])``: the state each chunk starts from
        (``before[..., n] = S_{n-1}``) and the state after the last chunk.
    """
    before, final = _StateScan.apply(decay, update, initial)
    return before, final
