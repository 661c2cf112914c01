"""The inter-chunk recurrence of chunkwise GLA and its reverse (the backward pass).

Chunk ``n`` turns the state ``S_{n-1}`` into ``S_n = diag(a_n) S_{n-1} + U_n`` (``a_n`` the
product of the chunk's gates, ``U_n`` the chunk's decayed ``K^T V``). The loop runs once per
chunk, not per token, on ``[..., D, Dv]`` states.
"""

from __future__ import annotations

import torch

__all__ = ["scan_backward", "scan_forward"]


def scan_forward(
    decay: torch.Tensor, update: torch.Tensor, initial: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``S_n = decay_n[:, None] * S_{n-1} + update_n`` over the chunk axis.

    Args:
        decay: per-chunk row decays ``[..., N, D]``.
        update: per-chunk additions ``[..., N, D, Dv]``.
        initial: ``S_0: [..., D, Dv]``.

    Returns:
        ``(before: [..., N, D, Dv], final: [..., D, Dv])``: the state each chunk starts from
        (``before[..., n, :, :] = S_{n-1}``) and the state after the last chunk.
    """
    before = torch.empty_like(update)
    state = initial
    for i in range(update.shape[-3]):
        before[..., i, :, :] = state
        state = torch.addcmul(update[..., i, :, :], decay[..., i, :, None], state)
    return before, state


def scan_backward(
    decay: torch.Tensor, grad_before: torch.Tensor, grad_final: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reverse scan: gradients of every chunk's *outgoing* state.

    ``S_n`` is read by chunk ``n + 1`` (as its ``before``) and carried into ``S_{n+1}``
    through ``decay_{n+1}``, so ``dS_{n} = grad_before_{n+1} + decay_{n+1} * dS_{n+1}``,
    starting from ``dS_N = grad_final``.

    Args:
        decay: ``[..., N, D]`` as in :func:`scan_forward`.
        grad_before: gradient of ``before``, ``[..., N, D, Dv]``.
        grad_final: gradient of ``final``, ``[..., D, Dv]``.

    Returns:
        ``(grad_after: [..., N, D, Dv], grad_initial: [..., D, Dv])``: ``grad_after[..., n]``
        is ``dS_n`` (the gradient of chunk ``n``'s update ``U_n``), ``grad_initial`` is ``dS_0``.
    """
    grad_after = torch.empty_like(grad_before)
    grad = grad_final
    for i in range(grad_before.shape[-3] - 1, -1, -1):
        grad_after[..., i, :, :] = grad
        grad = torch.addcmul(grad_before[..., i, :, :], decay[..., i, :, None], grad)
    return grad_after, grad
