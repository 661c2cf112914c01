"""Tucker decomposition by the truncated higher-order SVD (HOSVD).

``T: [I_1, ..., I_N] ~ G x_1 U_1 x_2 U_2 ... x_N U_N`` with a core ``G: [R_1, ..., R_N]`` and
factors ``U_k: [I_k, R_k]`` with orthonormal columns (De Lathauwer, De Moor and Vandewalle, "A
multilinear singular value decomposition", SIMAX 2000). ``U_k`` holds the leading left singular
vectors of the mode-k unfolding and ``G = T x_k U_k^T``. Truncation error obeys
``||T - T_hat||^2 <= sum_k (energy dropped in mode k)``, so ``rel_error = eps`` drops at most
``eps^2 ||T||^2 / N`` per mode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from archsmith.errors import ArchsmithError
from archsmith.tensornet.core.tt import truncation_rank

__all__ = [
    "mode_dot",
    "mode_singular_values",
    "tucker_hosvd",
    "tucker_params",
    "tucker_to_full",
    "unfold",
]


def unfold(tensor: torch.Tensor, mode: int) -> torch.Tensor:
    """Mode-``mode`` unfolding ``[I_mode, prod of the other sizes]``."""
    return tensor.movedim(mode, 0).reshape(tensor.shape[mode], -1)


def mode_dot(tensor: torch.Tensor, matrix: torch.Tensor, mode: int) -> torch.Tensor:
    """``tensor x_mode matrix``: ``matrix: [J, I_mode]`` replaces mode ``mode`` of size I by J."""
    return torch.tensordot(matrix, tensor, dims=([1], [mode])).movedim(0, mode)


def mode_singular_values(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Singular values of every mode unfolding (descending), the spectra rank selection reads."""
    return [torch.linalg.svdvals(unfold(tensor, k)) for k in range(tensor.ndim)]


def tucker_hosvd(
    tensor: torch.Tensor,
    ranks: int | Sequence[int] | None = None,
    rel_error: float | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Truncated HOSVD of ``tensor: [I_1, ..., I_N]``.

    Args:
        ranks: per-mode ranks ``R_k`` (an int caps every mode; None: no cap).
        rel_error: target relative error ``eps``; each mode keeps the fewest singular vectors
            that drop at most ``eps ||T|| / sqrt(N)``.

    Returns ``(core: [R_1, ..., R_N], factors: [I_k, R_k] each)``.
    """
    n = tensor.ndim
    caps: list[int | None]
    if ranks is None:
        caps = [None] * n
    elif isinstance(ranks, int):
        caps = [ranks] * n
    else:
        caps = list(ranks)
        if len(caps) != n:
            raise ArchsmithError(f"tucker_hosvd: {len(caps)} ranks for a {n}-way tensor")
    if any(c is not None and c < 1 for c in caps):
        raise ArchsmithError(f"tucker_hosvd: ranks must be >= 1, got {ranks}")
    delta = None if rel_error is None else rel_error * float(tensor.norm()) / math.sqrt(n)
    factors = []
    for k in range(n):
        u, s, _ = torch.linalg.svd(unfold(tensor, k), full_matrices=False)
        r = truncation_rank(s, max_rank=caps[k], delta=delta)
        factors.append(u[:, :r])
    core = tensor
    for k, u in enumerate(factors):
        core = mode_dot(core, u.T, k)
    return core, factors


def tucker_to_full(core: torch.Tensor, factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``core x_1 U_1 ... x_N U_N``: ``core: [R_1..R_N]``, ``U_k: [I_k, R_k]`` -> ``[I_1..I_N]``."""
    full = core
    for k, u in enumerate(factors):
        full = mode_dot(full, u, k)
    return full


def tucker_params(sizes: Sequence[int], ranks: Sequence[int]) -> int:
    """Entries of a Tucker core of shape ``ranks`` plus its factors ``[I_k, R_k]``."""
    return math.prod(ranks) + sum(i * r for i, r in zip(sizes, ranks, strict=True))
