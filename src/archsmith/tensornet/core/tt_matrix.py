"""The TT-matrix format (a matrix product operator, MPO).

A matrix ``W: [M, N]`` with ``M = m_1 ... m_d`` (rows) and ``N = n_1 ... n_d`` (columns) is
stored as cores ``G_k: [r_{k-1}, m_k, n_k, r_k]``::

    W[(i_1 ... i_d), (j_1 ... j_d)] = G_1[:, i_1, j_1, :] @ ... @ G_d[:, i_d, j_d, :]

(Oseledets, "Approximation of 2^d x 2^d matrices using tensor decomposition", 2010; Novikov et
al., "Tensorizing Neural Networks", NeurIPS 2015). It is the TT of the tensor whose k-th mode is
the pair ``(i_k, j_k)``, so :func:`tt_matrix_from_dense` is TT-SVD on that reshaping.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from archsmith.errors import ArchsmithError
from archsmith.tensornet.core.tt import tt_svd, tt_to_full

__all__ = [
    "interleave_modes",
    "tt_matrix_apply_two_cores",
    "tt_matrix_from_dense",
    "tt_matrix_to_dense",
]


def interleave_modes(
    w: torch.Tensor, out_modes: Sequence[int], in_modes: Sequence[int]
) -> torch.Tensor:
    """``w: [M, N] -> [m_1 n_1, m_2 n_2, ..., m_d n_d]`` (row and column index of each mode paired)."""
    d = len(out_modes)
    t = w.reshape(*out_modes, *in_modes)
    perm = [i for k in range(d) for i in (k, d + k)]
    return t.permute(perm).reshape([m * n for m, n in zip(out_modes, in_modes, strict=True)])


def tt_matrix_from_dense(
    w: torch.Tensor,
    in_modes: Sequence[int],
    out_modes: Sequence[int],
    max_rank: int | Sequence[int] | None = None,
    rel_error: float | None = None,
) -> list[torch.Tensor]:
    """TT-matrix cores ``[r_{k-1}, m_k, n_k, r_k]`` of ``w: [M, N]`` by TT-SVD.

    ``in_modes`` factor N, ``out_modes`` factor M, with the same number of modes d; ``max_rank``
    and ``rel_error`` truncate as in :func:`archsmith.tensornet.core.tt_svd`.
    """
    if len(in_modes) != len(out_modes):
        raise ArchsmithError(
            f"tt_matrix_from_dense: {len(in_modes)} in modes vs {len(out_modes)} out modes"
        )
    if tuple(w.shape) != (math.prod(out_modes), math.prod(in_modes)):
        raise ArchsmithError(
            f"tt_matrix_from_dense: weight {tuple(w.shape)} does not match modes "
            f"{tuple(out_modes)} x {tuple(in_modes)}"
        )
    cores = tt_svd(interleave_modes(w, out_modes, in_modes), max_rank=max_rank, rel_error=rel_error)
    return [
        c.reshape(c.shape[0], m, n, c.shape[-1])
        for c, m, n in zip(cores, out_modes, in_modes, strict=True)
    ]


def tt_matrix_to_dense(cores: Sequence[torch.Tensor]) -> torch.Tensor:
    """The matrix ``[M, N]`` of TT-matrix cores ``[r_{k-1}, m_k, n_k, r_k]``."""
    d = len(cores)
    out_modes = [int(c.shape[1]) for c in cores]
    in_modes = [int(c.shape[2]) for c in cores]
    full = tt_to_full([c.reshape(c.shape[0], -1, c.shape[-1]) for c in cores])
    full = full.reshape([s for m, n in zip(out_modes, in_modes, strict=True) for s in (m, n)])
    perm = [2 * k for k in range(d)] + [2 * k + 1 for k in range(d)]
    return full.permute(perm).reshape(math.prod(out_modes), math.prod(in_modes))


def tt_matrix_apply_two_cores(
    x: torch.Tensor, first: torch.Tensor, second: torch.Tensor
) -> torch.Tensor:
    """``x @ W^T`` for a two-core TT-matrix ``W``, as two plain matmuls.

    Args:
        x: ``[B, n_1 n_2]``.
        first: ``[1, m_1, n_1, r]``; second: ``[r, m_2, n_2, 1]``.

    Returns:
        ``[B, m_1 m_2]``.

    The input meets the second core first (``2 B n_1 n_2 r m_2`` FLOPs), then the first
    (``2 B n_1 r m_2 m_1``): the order of the cheapest layouts (``n_1``, ``m_2`` small). Written
    out rather than left to einsum, whose pairwise steps permute the ``[B, ..., r]``
    intermediates on both passes: here only the small intermediate and the output are
    transposed, and every product is one large 2-D matmul (forward and backward).
    """
    batch = x.shape[0]
    _, m1, n1, r = first.shape
    _, m2, n2, _ = second.shape
    t = x.reshape(batch * n1, n2) @ second.reshape(r * m2, n2).T  # [B n1, r m2]
    t = t.reshape(batch, n1 * r, m2).transpose(1, 2).reshape(batch * m2, n1 * r)
    y = t @ first.reshape(m1, n1 * r).T  # [B m2, m1]
    return y.reshape(batch, m2, m1).transpose(1, 2).reshape(batch, m1 * m2)
