"""Naive full-tensor references for the tensor-network classifiers, from the papers' equations.

Stoudenmire & Schwab (2016), eq. (2)-(5): ``f^l(x) = W^l . Phi(x)`` with the product state
``Phi(x) = phi(x_1) (x) ... (x) phi(x_N)``. These build the whole weight tensor ``W`` explicitly
(only possible for a handful of sites) and contract it with the explicit product state.
"""

from __future__ import annotations

import math

import torch


def feature(x: torch.Tensor, norm: str = "l2", dim: int = 2) -> torch.Tensor:
    """``[..., N] -> [..., N, d]``: ``[cos(pi x / 2), sin(pi x / 2)]`` (paper eq. 3) for
    ``d = 2``; for ``d > 2`` the binomial map ``sqrt(C(d-1, k)) cos^(d-1-k) sin^k``, ``k = 0..d-1``
    (Stoudenmire 2018), one scalar at a time. ``norm="l1"`` divides by the sum of components."""
    flat = x.reshape(-1).tolist()
    rows = []
    for v in flat:
        c, s = math.cos(math.pi * v / 2), math.sin(math.pi * v / 2)
        row = [math.sqrt(math.comb(dim - 1, k)) * c ** (dim - 1 - k) * s**k for k in range(dim)]
        if norm == "l1":
            total = sum(row)
            row = [r / total for r in row]
        rows.append(row)
    return torch.tensor(rows, dtype=x.dtype).reshape(*x.shape, dim)


def product_state(phi: torch.Tensor) -> torch.Tensor:
    """``phi: [B, N, d] -> Phi: [B, d, d, ..., d]`` (N factors), by repeated outer products."""
    state = phi[:, 0]
    for j in range(1, phi.shape[1]):
        state = state[..., None] * phi[:, j].reshape(-1, *([1] * (state.ndim - 1)), phi.shape[2])
    return state


def mps_full_tensor(cores: list[torch.Tensor], label_site: int) -> torch.Tensor:
    """``W: [d, ..., d, C]`` from MPS cores, contracting the bonds one site at a time.

    Every core is ``[D_l, d, D_r]`` except ``cores[label_site]: [D_l, d, C, D_r]``.
    """
    # running tensor [D_0, s_1, ..., s_j, (C), D_j]; the label axis is moved to the end at last
    w = cores[0]
    for j in range(1, len(cores)):
        w = torch.tensordot(w, cores[j], dims=([w.ndim - 1], [0]))
    w = w[0, ..., 0]  # outer bonds have dimension 1
    # the label axis sits right after site label_site's physical axis
    return torch.movedim(w, label_site + 1, -1)


def mps_naive_logits(
    cores: list[torch.Tensor], label_site: int, x: torch.Tensor, norm: str = "l2", dim: int = 2
) -> torch.Tensor:
    """``x: [B, N] -> [B, C]`` by contracting the full ``W`` with the full product state."""
    w = mps_full_tensor(cores, label_site)
    phi = product_state(feature(x, norm, dim))
    return phi.reshape(phi.shape[0], -1) @ w.reshape(-1, w.shape[-1])
