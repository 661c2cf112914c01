"""Chunkwise GLA: the fast training path (Yang et al., 2024, section 4).

The sequence is cut into chunks of ``C`` tokens. Across chunks the state is carried by the
recurrence, one step per chunk (:mod:`~archsmith.gating.gla._scan`); inside a chunk everything
is a batched matrix multiplication. With ``b`` the chunk-local cumulative log gates
(``b_i = g_1 + ... + g_i`` within the chunk, all ``<= 0``) and ``P`` the state before the chunk:

- inter-chunk: ``o_i += (q_i * exp(b_i)) P``;
- state update: ``S = diag(exp(b_C)) P + (K * exp(b_C - b))^T V``;
- intra-chunk: ``o_i += sum_{j <= i} A_ij v_j`` with ``A_ij = sum_d q_id k_jd exp(b_id - b_jd)``
  (:mod:`~archsmith.gating.gla._intra`: factorized where that is safe, secondary chunking
  in log space elsewhere).

Every exponent is bounded (``<= 0``, or ``<= limit`` in the factorized form), so log gates of
``-20`` per step over 16k tokens give zeros where the true values underflow, never ``inf`` or
``NaN``. The backward pass is written out (:class:`_ChunkGLA`); it keeps only the inputs, the
chunk states and the in-chunk scores, and gets the gates' gradient from the identity
``dL/dB_t = q_t dq_t - k_t dk_t`` for the global cumulative gates ``B`` (section 4.3 of the
paper; ``dg`` is its reverse cumulative sum). Memory is linear in ``T``: nothing ``[T, T]`` is
formed.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch.autograd.function import once_differentiable

from archsmith.errors import ArchsmithError
from archsmith.gating.gla._checks import check_inputs
from archsmith.gating.gla._intra import chunk_score_grads, chunk_scores, factorized_limit
from archsmith.gating.gla._scan import scan_backward, scan_forward

__all__ = ["chunk_gla", "chunk_gla_flops"]


class _ChunkGLA(torch.autograd.Function):
    """Chunkwise GLA on ``q, k, g: [BH, N, C, D]``, ``v: [BH, N, C, Dv]``,
    ``initial: [BH, D, Dv]``; returns ``(o: [BH, N, C, Dv], final: [BH, D, Dv])``.

    Saved for backward: the inputs, the cumulative gates, the chunk states ``[BH, N, D, Dv]``
    and the in-chunk scores ``[BH, N, C, C]``: ``O(T (D + Dv + C) + T D Dv / C)`` numbers.
    """

    @staticmethod
    def forward(
        ctx: Any,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        g: torch.Tensor,
        initial: torch.Tensor,
        scale: float,
        sub: int,
        limit: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        bh, n, c, _ = q.shape
        q = q * scale
        cum = g.cumsum(dim=2)  # chunk-local
        last = cum[:, :, -1]  # [BH, N, D]: log of each chunk's total decay
        q_decayed = q * cum.exp()
        k_to_end = k * (last.unsqueeze(2) - cum).exp()  # keys decayed to their chunk's end
        before, final = scan_forward(last.exp(), k_to_end.transpose(-1, -2) @ v, initial)
        m = bh * n
        scores = chunk_scores(
            q.view(m, c, -1),
            k.view(m, c, -1),
            cum.view(m, c, -1),
            q_decayed.view(m, c, -1),
            sub,
            limit,
        ).view(bh, n, c, c)
        o = torch.baddbmm((q_decayed @ before).flatten(0, 1), scores.flatten(0, 1), v.flatten(0, 1))
        ctx.save_for_backward(q, k, v, cum, before, final, scores)
        ctx.scale, ctx.sub, ctx.limit = scale, sub, limit
        return o.view(bh, n, c, -1), final

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad_o: torch.Tensor, grad_final: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        q, k, v, cum, before, final, scores = ctx.saved_tensors
        bh, n, c, d = q.shape
        last = cum[:, :, -1]
        decay_q = cum.exp()  # [BH, N, C, D]
        decay_k = (last.unsqueeze(2) - cum).exp()
        q_decayed = q * decay_q
        # gradient of each chunk's incoming state, then of every outgoing one (reverse scan)
        grad_before = q_decayed.transpose(-1, -2) @ grad_o  # [BH, N, D, Dv]
        grad_after, grad_initial = scan_backward(last.exp(), grad_before, grad_final)

        grad_v = scores.transpose(-1, -2) @ grad_o + (k * decay_k) @ grad_after
        grad_scores = (grad_o @ v.transpose(-1, -2)).tril_()  # [BH, N, C, C]
        m = bh * n
        grad_q, grad_k = chunk_score_grads(
            grad_scores.view(m, c, c),
            q.view(m, c, -1),
            k.view(m, c, -1),
            cum.view(m, c, -1),
            q_decayed.view(m, c, -1),
            ctx.sub,
            ctx.limit,
        )
        grad_q = grad_q.view_as(q).addcmul_(decay_q, grad_o @ before.transpose(-1, -2))
        grad_k = grad_k.view_as(k).addcmul_(decay_k, v @ grad_after.transpose(-1, -2))

        # Every use of the gates goes through the global cumulative sums B_t: as q_t exp(B_t),
        # k_t exp(-B_t) and exp(B_T) in the final state. So dL/dB_t = q_t dq_t - k_t dk_t
        # (+ sum_v dS_T * S_T at t = T), and dL/dg_s = sum_{t >= s} dL/dB_t.
        grad_cum = q * grad_q - k * grad_k  # [BH, N, C, D]
        grad_cum[:, -1, -1] += (grad_final * final).sum(-1)
        grad_g = grad_cum.view(bh, n * c, d).flip(1).cumsum(1).flip(1).view_as(grad_cum)
        grad_q *= ctx.scale
        return grad_q, grad_k, grad_v, grad_g, grad_initial, None, None, None


def chunk_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    chunk_size: int = 64,
    sub_chunk_size: int = 16,
    factorized_max: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """GLA, chunkwise: recurrence over chunk states, matrix multiplications inside chunks.

    Args:
        q, k: queries and keys ``[B, T, H, D]``.
        v: values ``[B, T, H, Dv]``.
        g: log forget gates ``[B, T, H, D]`` (``<= 0``).
        scale: query scale; default ``D ** -0.5``.
        initial_state: ``S_0: [B, H, D, Dv]``; default zeros.
        output_final_state: also return ``S_T``.
        chunk_size: tokens per chunk ``C`` (default 64); ``T`` need not be a multiple of it.
        sub_chunk_size: tokens per sub-chunk ``L`` of secondary chunking (default 16; must
            divide ``C``).
        factorized_max: chunks whose cumulative log gates stay within this bound use the
            factorized in-chunk form, the others secondary chunking; default
            :func:`~archsmith.gating.gla._intra.factorized_limit` of the dtype. ``0`` forces
            secondary chunking everywhere (both forms are exact).

    Returns:
        ``(o: [B, T, H, Dv], S_T: [B, H, D, Dv] or None)``, equal to
        :func:`~archsmith.gating.gla.naive.naive_recurrent_gla` up to rounding.
    """
    scale = check_inputs(q, k, v, g, scale, initial_state)
    if chunk_size < 1 or sub_chunk_size < 1:
        raise ArchsmithError(
            f"gla: chunk_size and sub_chunk_size must be >= 1, got {chunk_size}, {sub_chunk_size}"
        )
    sub = min(sub_chunk_size, chunk_size)
    if chunk_size % sub:
        raise ArchsmithError(
            f"gla: sub_chunk_size {sub_chunk_size} must divide chunk_size {chunk_size}"
        )
    b, t, h, d = q.shape
    dv = v.shape[-1]
    # a short sequence gets one chunk of just enough sub-chunks
    c = min(chunk_size, -(-max(t, 1) // sub) * sub)
    pad = -t % c
    if pad:
        # padded tokens have k = 0 (add nothing) and g = 0 (no decay): S_T stays as it is
        q, k, v, g = (F.pad(x, (0, 0, 0, 0, 0, pad)) for x in (q, k, v, g))
    q, k, v, g = (
        rearrange(x, "b (n c) h d -> (b h) n c d", c=c).contiguous() for x in (q, k, v, g)
    )
    initial = (
        q.new_zeros(b * h, d, dv) if initial_state is None else initial_state.reshape(b * h, d, dv)
    )
    limit = factorized_limit(q.dtype) if factorized_max is None else float(factorized_max)
    o, final = _ChunkGLA.apply(q, k, v, g, initial, scale, sub, limit)
    o = rearrange(o, "(b h) n c d -> b (n c) h d", b=b)[:, :t]
    return o, (final.view(b, h, d, dv) if output_final_state else None)


def chunk_gla_flops(
    batch: int,
    seq_len: int,
    heads: int,
    head_dim: int,
    value_dim: int | None = None,
    *,
    chunk_size: int = 64,
    backward: bool = False,
) -> int:
    """Matmul FLOPs of :func:`chunk_gla` (2 per multiply-add): the numerator of its GFLOP/s.

    Per chunk of ``C`` tokens and head (``N = ceil(T / C)`` chunks), forward:

    - scores ``Q K^T``: ``2 C^2 D``;  scores times values: ``2 C^2 Dv``;
    - inter-chunk output ``Q P``: ``2 C D Dv``;  state update ``K^T V``: ``2 C D Dv``.

    The backward pass has two matmuls of the same sizes for each of these four (``dA = dO V^T``
    and ``dV += A^T dO``; ``dQ``, ``dK`` from ``dA``; ``dP = Q^T dO`` and ``dQ += dO P^T``;
    ``dV += K dS`` and ``dK += V dS^T``), so ``backward=True`` returns ``3x`` the forward count
    (forward + backward). Elementwise work (gate exponentials, secondary chunking's diagonal
    blocks) is not counted, as in :class:`torch.utils.flop_counter.FlopCounterMode`.
    """
    dv = head_dim if value_dim is None else value_dim
    c = chunk_size
    chunks = -(-seq_len // c)
    per_chunk = 2 * c * c * head_dim + 2 * c * c * dv + 4 * c * head_dim * dv
    forward = batch * heads * chunks * per_chunk
    return 3 * forward if backward else forward
