"""In-chunk scores of GLA: ``A_ij = sum_d q_id k_jd exp(b_id - b_jd)`` for ``j <= i``.

``b`` are the chunk-local cumulative log gates (non-increasing, ``b <= 0``). Two exact ways:

- **factorized** (Yang et al., 2024, section 4.1): ``A = tril((q * exp(b)) (k * exp(-b))^T)``,
  one matrix product. ``exp(-b)`` grows with the chunk's total decay, so this is used only for
  chunks whose cumulative log gates stay within ``limit`` (:func:`factorized_limit`: the factors
  then stay far from overflow and underflow, and every product is as accurate as the direct
  form). With the paper's gate normaliser (``logsigmoid(x) / 16``) that is nearly every chunk.
- **secondary chunking** (section 4.2), for the other chunks: sub-chunks of ``L`` tokens. For
  query sub-chunk ``a`` against earlier keys, with ``r_a`` the cumulative gate just before
  sub-chunk ``a``, ``exp(b_i - b_j) = exp(b_i - r_a) exp(r_a - b_j)`` and both factors are
  ``<= 1``: one matrix product per row block. Inside a sub-chunk, the ``[L, L, D]`` relative
  decays are formed with the future masked to ``-inf`` before the exponential. Every exponent is
  ``<= 0``, so any gate strength is safe (values that underflow become 0, never ``inf``).

Chunks are processed flattened, ``[M, C, D]`` with ``M`` = batch x heads x chunks; the
secondary-chunking path runs over groups of chunks small enough for the ``[L, L, D]``
temporaries to stay in cache.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import torch

__all__ = ["chunk_score_grads", "chunk_scores", "factorized_limit"]

#: elements of the largest temporary of one secondary-chunking group (~1 MiB in float32)
_GROUP_ELEMENTS = 1 << 18


def factorized_limit(dtype: torch.dtype) -> float:
    """Largest ``|b|`` (chunk-local cumulative log gate) for the factorized form in ``dtype``:
    a quarter of ``log(max float)`` (22 in float32, 177 in float64), so ``exp(-b)`` times
    queries, keys and a sum over the head dimension stays many orders below overflow."""
    return math.log(torch.finfo(dtype).max) / 4


class _Decays(NamedTuple):
    """The bounded decay factors of secondary chunking (``n`` sub-chunks of ``L`` tokens).

    Attributes:
        query: ``exp(b_i - r_a)`` for query ``i`` in sub-chunk ``a``: ``[M, n, L, D]``.
        key: ``exp(r_a - b_j)`` for key ``j`` before sub-chunk ``a``, else 0: ``[M, n, C, D]``.
        diag: ``exp(b_i - b_j)`` for ``j <= i`` in one sub-chunk, else 0: ``[M, n, L, L, D]``.
    """

    query: torch.Tensor
    key: torch.Tensor
    diag: torch.Tensor


def _decays(cum: torch.Tensor, sub: int) -> _Decays:
    m, c, d = cum.shape
    n = c // sub
    bs = cum.view(m, n, sub, d)
    # r_a; sub-chunk 0 has no earlier keys, so any value with b_i - r_0 <= 0 serves
    ref = torch.cat([bs[:, :1, 0], bs[:, :-1, -1]], dim=1)  # [M, n, D]
    query = (bs - ref.unsqueeze(2)).exp_()
    start = torch.arange(n, device=cum.device) * sub
    later = torch.arange(c, device=cum.device) >= start[:, None]  # [n, C]: not before a
    key = (ref.unsqueeze(2) - cum.unsqueeze(1)).masked_fill_(later[:, :, None], -math.inf)
    future = torch.ones(sub, sub, dtype=torch.bool, device=cum.device).triu(1)
    diag = (bs.unsqueeze(3) - bs.unsqueeze(2)).masked_fill_(future[:, :, None], -math.inf)
    return _Decays(query, key.exp_(), diag.exp_())


def _diagonal_blocks(a: torch.Tensor, n: int) -> torch.Tensor:
    """View of the ``n`` diagonal ``[L, L]`` blocks of ``a: [M, C, C]`` as ``[M, L, L, n]``."""
    m, c, _ = a.shape
    return torch.diagonal(a.view(m, n, c // n, n, c // n), dim1=1, dim2=3)


def _sub_chunk_scores(
    q: torch.Tensor, k: torch.Tensor, cum: torch.Tensor, sub: int
) -> torch.Tensor:
    m, c, d = q.shape
    n = c // sub
    dec = _decays(cum, sub)
    qs, ks = q.view(m, n, sub, d), k.view(m, n, sub, d)
    keys = k.unsqueeze(1) * dec.key  # [M, n, C, D]
    scores = ((qs * dec.query) @ keys.transpose(-1, -2)).view(m, c, c)  # row block a: [L, C]
    diag = ((qs.unsqueeze(3) * dec.diag) * ks.unsqueeze(2)).sum(-1)  # [M, n, L, L]
    _diagonal_blocks(scores, n).add_(diag.movedim(1, -1))
    return scores


def _sub_chunk_grads(
    grad: torch.Tensor, q: torch.Tensor, k: torch.Tensor, cum: torch.Tensor, sub: int
) -> tuple[torch.Tensor, torch.Tensor]:
    m, c, d = q.shape
    n = c // sub
    dec = _decays(cum, sub)
    qs, ks = q.view(m, n, sub, d), k.view(m, n, sub, d)
    rows = grad.view(m, n, sub, c)  # [M, n, L, C]
    keys = k.unsqueeze(1) * dec.key  # [M, n, C, D]
    dq = (rows @ keys) * dec.query  # [M, n, L, D]
    dk = ((rows.transpose(-1, -2) @ (qs * dec.query)) * dec.key).sum(1)  # [M, C, D]
    grad_diag = _diagonal_blocks(grad, n).movedim(-1, 1)  # [M, n, L, L]
    weighted = grad_diag.unsqueeze(-1) * dec.diag  # [M, n, L(i), L(j), D]
    dq += (weighted * ks.unsqueeze(2)).sum(3)
    dk += (weighted * qs.unsqueeze(3)).sum(2).view(m, c, d)
    return dq.view(m, c, d), dk


def _split(cum: torch.Tensor, limit: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the chunks of ``cum: [M, C, D]`` for the factorized form and of the others."""
    safe = cum.abs().flatten(1).amax(1) <= limit  # [M]
    return safe.nonzero().squeeze(1), (~safe).nonzero().squeeze(1)


def _groups(index: torch.Tensor, c: int, sub: int, d: int) -> Iterator[torch.Tensor]:
    size = max(1, _GROUP_ELEMENTS // (c * sub * d))
    yield from index.split(size)


def chunk_scores(
    q: torch.Tensor,
    k: torch.Tensor,
    cum: torch.Tensor,
    q_decayed: torch.Tensor,
    sub: int,
    limit: float,
) -> torch.Tensor:
    """In-chunk scores ``A: [M, C, C]`` (zero above the diagonal).

    Args:
        q, k: ``[M, C, D]`` (``q`` already scaled).
        cum: chunk-local cumulative log gates ``[M, C, D]``.
        q_decayed: ``q * exp(cum)`` (the inter-chunk queries; reused by the factorized form).
        sub: sub-chunk size ``L`` (divides ``C``).
        limit: chunks with ``|cum| <= limit`` everywhere use the factorized form.
    """
    m, c, d = q.shape
    fast, slow = _split(cum, limit)
    if len(slow) == 0:
        return (q_decayed @ (k * (-cum).exp()).transpose(-1, -2)).tril_()
    scores = q.new_empty(m, c, c)
    if len(fast):
        kd = k[fast] * (-cum[fast]).exp()
        scores[fast] = (q_decayed[fast] @ kd.transpose(-1, -2)).tril_()
    for idx in _groups(slow, c, sub, d):
        scores[idx] = _sub_chunk_scores(q[idx], k[idx], cum[idx], sub)
    return scores


def chunk_score_grads(
    grad: torch.Tensor,
    q: torch.Tensor,
    k: torch.Tensor,
    cum: torch.Tensor,
    q_decayed: torch.Tensor,
    sub: int,
    limit: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients ``(dq, dk): [M, C, D]`` of ``sum(grad * chunk_scores(q, k, ...))`` for
    ``grad: [M, C, C]`` that is zero above the diagonal; arguments as :func:`chunk_scores`."""
    _, c, d = q.shape
    fast, slow = _split(cum, limit)
    if len(slow) == 0:
        grow = (-cum).exp()
        dq = (grad @ (k * grow)) * cum.exp()
        dk = (grad.transpose(-1, -2) @ q_decayed) * grow
        return dq, dk
    dq, dk = torch.empty_like(q), torch.empty_like(k)
    if len(fast):
        grow = (-cum[fast]).exp()
        gf = grad[fast]
        dq[fast] = (gf @ (k[fast] * grow)) * cum[fast].exp()
        dk[fast] = (gf.transpose(-1, -2) @ q_decayed[fast]) * grow
    for idx in _groups(slow, c, sub, d):
        dq[idx], dk[idx] = _sub_chunk_grads(grad[idx], q[idx], k[idx], cum[idx], sub)
    return dq, dk
