"""CP (CANDECOMP/PARAFAC) decomposition by alternating least squares.

``T[i_1, ..., i_N] ~ sum_r A_1[i_1, r] A_2[i_2, r] ... A_N[i_N, r]`` (Kolda and Bader, "Tensor
Decompositions and Applications", SIAM Review 2009, section 3.4). Each ALS step solves the
least-squares problem for one factor with the others fixed::

    A_k <- T_(k) (KhatriRao of the others) (Hadamard of A_j^T A_j, j != k)^-1

Initialised from the SVD of each unfolding (leading left singular vectors; random columns
where the rank exceeds the mode size), as Kolda and Bader recommend.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import torch

from archsmith.errors import ArchsmithError
from archsmith.tensornet.core.tucker import unfold

__all__ = ["cp_als", "cp_params", "cp_to_full"]


def cp_to_full(factors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The full tensor ``[I_1, ..., I_N]`` of CP factors ``[I_k, R]``."""
    letters = string.ascii_letters[: len(factors)]
    eq = ",".join(f"{c}z" for c in letters) + "->" + letters
    return torch.einsum(eq, *factors)


def _mttkrp(tensor: torch.Tensor, factors: Sequence[torch.Tensor], mode: int) -> torch.Tensor:
    """``T_(mode) @ KhatriRao(A_j, j != mode)``: ``[I_mode, R]`` without forming the Khatri-Rao."""
    letters = string.ascii_letters[: tensor.ndim]
    ops = [f"{c}z" for k, c in enumerate(letters) if k != mode]
    mats = [f for k, f in enumerate(factors) if k != mode]
    return torch.einsum(f"{letters}," + ",".join(ops) + f"->{letters[mode]}z", tensor, *mats)


def _svd_init(tensor: torch.Tensor, rank: int, generator: torch.Generator) -> list[torch.Tensor]:
    factors = []
    for k in range(tensor.ndim):
        u, s, _ = torch.linalg.svd(unfold(tensor, k), full_matrices=False)
        r = min(rank, u.shape[1])
        a = u[:, :r] * s[:r].sqrt() ** (1.0 / max(1, tensor.ndim - 1))
        if r < rank:
            extra = torch.randn(u.shape[0], rank - r, generator=generator, dtype=u.dtype) * s[
                -1:
            ].mean().clamp_min(1e-3)
            a = torch.cat([a, extra.to(u.device)], 1)
        factors.append(a)
    return factors


def cp_als(
    tensor: torch.Tensor,
    rank: int,
    *,
    n_iter: int = 200,
    tol: float = 1e-10,
    seed: int = 0,
    ridge: float = 1e-12,
) -> list[torch.Tensor]:
    """Rank-``rank`` CP of ``tensor: [I_1, ..., I_N]`` by ALS; returns factors ``[I_k, R]``.

    Args:
        n_iter: maximum sweeps. tol: stop when the relative error improves by less.
        seed: for the random columns of the initialisation. ridge: relative Tikhonov term that
            keeps the normal equations solvable when factors are collinear.
    """
    if rank < 1:
        raise ArchsmithError(f"cp_als: rank must be >= 1, got {rank}")
    gen = torch.Generator().manual_seed(seed)
    factors = _svd_init(tensor, rank, gen)
    norm = float(tensor.norm()) or 1.0
    prev = float("inf")
    eye = torch.eye(rank, dtype=tensor.dtype, device=tensor.device)
    for _ in range(n_iter):
        for k in range(tensor.ndim):
            gram = torch.ones(rank, rank, dtype=tensor.dtype, device=tensor.device)
            for j, f in enumerate(factors):
                if j != k:
                    gram = gram * (f.T @ f)
            rhs = _mttkrp(tensor, factors, k)  # [I_k, R]
            lam = ridge * float(gram.diagonal().abs().max().clamp_min(1e-30))
            factors[k] = torch.linalg.solve(gram + lam * eye, rhs.T).T
        err = float((tensor - cp_to_full(factors)).norm()) / norm
        if prev - err < tol * max(err, 1e-30) or err < 1e-12:
            break
        prev = err
    return factors


def cp_params(sizes: Sequence[int], rank: int) -> int:
    """Entries of CP factors ``[I_k, R]``."""
    return rank * sum(sizes)
