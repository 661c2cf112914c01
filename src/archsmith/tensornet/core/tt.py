"""Tensor train (TT, a.k.a. MPS) decomposition: TT-SVD and reconstruction.

A tensor ``A: [n_1, ..., n_d]`` in TT format is a chain of cores ``G_k: [r_{k-1}, n_k, r_k]``
with ``r_0 = r_d = 1``::

    A[i_1, ..., i_d] = G_1[:, i_1, :] @ G_2[:, i_2, :] @ ... @ G_d[:, i_d, :]

TT-SVD (Oseledets, "Tensor-Train Decomposition", SISC 2011, Algorithm 1) sweeps left to right,
splitting off one core per truncated SVD. With ``rel_error = eps`` each of the ``d - 1`` SVDs
drops at most ``eps * ||A|| / sqrt(d - 1)`` in Frobenius norm, so the whole approximation is
within ``eps * ||A||``; ``max_rank`` caps every bond dimension ``r_k``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from archsmith.errors import ArchsmithError

__all__ = ["max_tt_ranks", "truncation_rank", "tt_params", "tt_ranks", "tt_svd", "tt_to_full"]


def truncation_rank(s: torch.Tensor, *, max_rank: int | None, delta: float | None) -> int:
    """The smallest rank ``r`` whose discarded singular values ``s[r:]`` have norm <= ``delta``,
    capped at ``max_rank`` (``s`` sorted descending; at least 1)."""
    r = s.numel()
    if delta is not None:
        # tail[j] = ||s[j:]||; keep the first j with tail <= delta
        tail = torch.flip(torch.cumsum(torch.flip(s.double() ** 2, [0]), 0), [0]).sqrt()
        tail = torch.cat([tail, tail.new_zeros(1)])
        ok = torch.nonzero(tail <= delta)
        r = int(ok[0]) if ok.numel() else s.numel()
    if max_rank is not None:
        r = min(r, max_rank)
    return max(1, r)


def tt_svd(
    tensor: torch.Tensor,
    max_rank: int | Sequence[int] | None = None,
    rel_error: float | None = None,
) -> list[torch.Tensor]:
    """TT-SVD of ``tensor: [n_1, ..., n_d]`` into cores ``[r_{k-1}, n_k, r_k]``.

    Args:
        max_rank: cap on every bond dimension, or one cap per bond (``d - 1`` ints; None: no
            cap).
        rel_error: target relative Frobenius error ``eps`` (None: no truncation but
            ``max_rank``); the result satisfies ``||A - TT|| <= eps ||A||``.

    Returns the ``d`` cores (``r_0 = r_d = 1``); without truncation the TT is exact.
    """
    shape = tuple(tensor.shape)
    d = len(shape)
    caps: list[int | None]
    if max_rank is None or isinstance(max_rank, int):
        caps = [max_rank] * max(0, d - 1)
    else:
        caps = list(max_rank)
        if len(caps) != d - 1:
            raise ArchsmithError(f"tt_svd: {len(caps)} ranks for {d - 1} bonds")
    if any(c is not None and c < 1 for c in caps):
        raise ArchsmithError(f"tt_svd: max_rank must be >= 1, got {max_rank}")
    if rel_error is not None and rel_error < 0:
        raise ArchsmithError(f"tt_svd: rel_error must be >= 0, got {rel_error}")
    if d == 1:
        return [tensor.reshape(1, shape[0], 1)]
    delta = None
    if rel_error is not None:
        delta = rel_error * float(tensor.norm()) / math.sqrt(d - 1)
    cores = []
    rest = tensor.reshape(shape[0], -1)
    r_prev = 1
    for k in range(d - 1):
        mat = rest.reshape(r_prev * shape[k], -1)  # [r_{k-1} n_k, n_{k+1} ... n_d]
        u, s, vh = torch.linalg.svd(mat, full_matrices=False)
        r = truncation_rank(s, max_rank=caps[k], delta=delta)
        cores.append(u[:, :r].reshape(r_prev, shape[k], r))
        rest = s[:r, None] * vh[:r]  # [r_k, n_{k+1} ... n_d]
        r_prev = r
    cores.append(rest.reshape(r_prev, shape[-1], 1))
    return cores


def tt_to_full(cores: Sequence[torch.Tensor]) -> torch.Tensor:
    """Contract TT cores ``[r_{k-1}, n_k, r_k]`` back into the full tensor ``[n_1, ..., n_d]``
    (boundary ranks must be 1)."""
    if cores[0].shape[0] != 1 or cores[-1].shape[-1] != 1:
        raise ArchsmithError("tt_to_full: boundary ranks must be 1")
    full = cores[0].reshape(cores[0].shape[1], -1)  # [n_1, r_1]
    for core in cores[1:]:
        r, n, r_next = core.shape
        full = (full @ core.reshape(r, n * r_next)).reshape(-1, r_next)
    return full.reshape([int(c.shape[1]) for c in cores])


def tt_ranks(cores: Sequence[torch.Tensor]) -> tuple[int, ...]:
    """The inner bond dimensions ``(r_1, ..., r_{d-1})``."""
    return tuple(int(c.shape[-1]) for c in cores[:-1])


def max_tt_ranks(sizes: Sequence[int]) -> tuple[int, ...]:
    """The largest useful bond dimensions for a tensor of mode ``sizes`` (the ranks of the exact
    TT): ``r_k = min(n_1 ... n_k, n_{k+1} ... n_d)``."""
    total = math.prod(sizes)
    out, left = [], 1
    for n in sizes[:-1]:
        left *= n
        out.append(min(left, total // left))
    return tuple(out)


def tt_params(sizes: Sequence[int], ranks: Sequence[int]) -> int:
    """Entries in TT cores of mode ``sizes`` and inner bond dimensions ``ranks``."""
    full = (1, *ranks, 1)
    return sum(full[k] * n * full[k + 1] for k, n in enumerate(sizes))
