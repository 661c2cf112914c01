"""The reference GLA recurrence: a readable loop straight from the paper's equations.

Yang et al., 2024, "Gated Linear Attention Transformers with Hardware-Efficient Training",
eq. (3)-(4): a matrix-valued state ``S_t: [D, Dv]`` decayed row-wise by a data-dependent gate,

    S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t,        o_t = (scale * q_t) S_t,

with ``g_t <= 0`` the log of the forget gate ``alpha_t``. Slow (one step per token); the other
forms are tested against it.
"""

from __future__ import annotations

import torch

from archsmith.gating.gla._checks import check_inputs

__all__ = ["naive_recurrent_gla"]


def naive_recurrent_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """GLA by stepping the recurrence token by token.

    Args:
        q, k: queries and keys ``[B, T, H, D]``.
        v: values ``[B, T, H, Dv]``.
        g: log forget gates ``[B, T, H, D]`` (``<= 0``; ``exp(g)`` is the gate).
        scale: query scale; default ``D ** -0.5``.
        initial_state: ``S_0: [B, H, D, Dv]``; default zeros.
        output_final_state: also return ``S_T``.

    Returns:
        ``(o: [B, T, H, Dv], S_T: [B, H, D, Dv] or None)``.
    """
    scale = check_inputs(q, k, v, g, scale, initial_state)
    b, t, h, d = q.shape
    state = q.new_zeros(b, h, d, v.shape[-1]) if initial_state is None else initial_state
    outputs = []
    for i in range(t):
        decay = g[:, i].exp().unsqueeze(-1)  # [B, H, D, 1]: row d of S_t decays by alpha_{t,d}
        state = decay * state + k[:, i].unsqueeze(-1) * v[:, i].unsqueeze(-2)
        outputs.append(torch.einsum("bhd,bhdv->bhv", q[:, i] * scale, state))
    o = torch.stack(outputs, dim=1) if outputs else v.new_zeros(v.shape)
    return o, (state if output_final_state else None)
