"""GLA in its parallel (quadratic) form: every output attends to every earlier token at once.

Yang et al., 2024, eq. (5): with ``B_t = g_1 + ... + g_t`` (cumulative log gates),

    o_t = sum_{s <= t} (scale * q_t  *  exp(B_t - B_s)  *  k_s) . v_s  +  (scale * q_t * exp(B_t)) S_0,

where the products over the key dimension are elementwise and ``.`` sums over it. The paper
writes ``exp(B_t - B_s)`` as ``exp(B_t) * exp(-B_s)``, which overflows once the gates have
decayed far; here the relative log gates ``B_t - B_s`` are formed first and the entries with
``s > t`` (which would be positive and large) are set to ``-inf`` *before* the exponential, so
every exponent is ``<= 0``. Time and memory are ``O(T^2 D)``: a test and small-``T`` form.
"""

from __future__ import annotations

import torch
from einops import rearrange

from archsmith.gating.gla._checks import check_inputs

__all__ = ["parallel_gla"]


def parallel_gla(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """GLA with the full ``[T, T, D]`` matrix of relative gate decays.

    Args and returns as :func:`~archsmith.gating.gla.naive.naive_recurrent_gla`:
    ``q, k, g: [B, T, H, D]``, ``v: [B, T, H, Dv]``, ``initial_state: [B, H, D, Dv] | None``;
    returns ``(o: [B, T, H, Dv], S_T: [B, H, D, Dv] | None)``.
    """
    scale = check_inputs(q, k, v, g, scale, initial_state)
    t = q.shape[1]
    cum = g.cumsum(dim=1)  # [B, T, H, D]
    qh, kh, ch = (rearrange(x, "b t h d -> b h t d") for x in (q * scale, k, cum))
    rel = ch.unsqueeze(3) - ch.unsqueeze(2)  # [B, H, T(t), T(s), D]: B_t - B_s
    future = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)  # s > t
    decay = rel.masked_fill_(future[:, :, None], float("-inf")).exp_()
    scores = (qh.unsqueeze(3) * decay * kh.unsqueeze(2)).sum(-1)  # [B, H, T, T]
    o = rearrange(scores @ rearrange(v, "b t h d -> b h t d"), "b h t d -> b t h d")
    if initial_state is not None:
        o = o + torch.einsum("bthd,bhdv->bthv", q * scale * cum.exp(), initial_state)
    if not output_final_state:
        return o, None
    to_end = (cum[:, -1:] - cum).exp() * k  # [B, T, H, D]: k_s decayed to the last step
    final = torch.einsum("bshd,bshv->bhdv", to_end, v)
    if initial_state is not None:
        final = final + cum[:, -1].exp().unsqueeze(-1) * initial_state
    return o, final
