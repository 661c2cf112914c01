"""One-step GLA decoding: the linear-time recurrent inference of Yang et al., 2024 (eq. 3-4).

Generation keeps only the ``[D, Dv]`` state per head, whatever the length so far::

    S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t,      o_t = (scale * q_t) S_t

A prompt is prefilled with :func:`~archsmith.gating.gla.chunk.chunk_gla`
(``output_final_state=True``); each new token then takes one :func:`fused_recurrent_gla_step`.
"""

from __future__ import annotations

import torch

from archsmith.errors import ArchsmithError

__all__ = ["fused_recurrent_gla_step"]


def fused_recurrent_gla_step(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    state: torch.Tensor | None = None,
    scale: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Advance the GLA state by one token.

    Args:
        q, k: the token's query and key ``[B, H, D]``.
        v: its value ``[B, H, Dv]``.
        g: its log forget gate ``[B, H, D]`` (``<= 0``).
        state: ``S_{t-1}: [B, H, D, Dv]``; ``None`` starts from zeros.
        scale: query scale; default ``D ** -0.5``.

    Returns:
        ``(o_t: [B, H, Dv], S_t: [B, H, D, Dv])``; the input state is not modified.
    """
    if q.dim() != 3 or k.shape != q.shape or g.shape != q.shape or v.shape[:2] != q.shape[:2]:
        raise ArchsmithError(
            f"gla step: q, k, g must be [B, H, D] and v [B, H, Dv], got {list(q.shape)}, "
            f"{list(k.shape)}, {list(g.shape)} and {list(v.shape)}"
        )
    b, h, d = q.shape
    if state is None:
        state = q.new_zeros(b, h, d, v.shape[-1])
    elif tuple(state.shape) != (b, h, d, v.shape[-1]):
        raise ArchsmithError(
            f"gla step: state must be [B, H, D, Dv] = {[b, h, d, v.shape[-1]]}, "
            f"got {list(state.shape)}"
        )
    scale = d**-0.5 if scale is None else float(scale)
    # one fused multiply-add for the whole state: decay every row, add the outer product k^T v
    state = torch.addcmul(k.unsqueeze(-1) * v.unsqueeze(-2), g.exp().unsqueeze(-1), state)
    o = ((q * scale).unsqueeze(-2) @ state).squeeze(-2)  # [B, H, Dv]
    return o, state
