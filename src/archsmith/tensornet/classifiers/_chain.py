"""Numerically stable contraction of an MPS with a product state.

Over 64 sites the transfer matrices ``sum_s phi_s(x_j) A_j[:, s, :]`` multiply to numbers far
outside float32 range unless the partial products are rescaled. Two devices keep every
intermediate near 1:

- the matrices are multiplied pairwise in a balanced tree (TorchMPS's "parallel" order), so the
  depth of any partial product is ``log2(N)`` and all products of one level run as one batched
  matmul;
- after every level each partial product is divided by its largest entry and the logarithm of
  that factor is accumulated per sample. The factor is detached: the chain is multilinear, so
  dividing one factor by a constant and multiplying the result by it is an identity, and the
  gradient through the rescaled chain is the exact gradient.

The result is ``exp(log_scale) * value``: the true ``f^l(x) = W^l . Phi(x)``, not a normalized
surrogate.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from archsmith.tensornet.core.contract import contract

__all__ = ["mean_square_weight", "mps_logits", "rescale", "side_vectors", "tree_product"]


def rescale(t: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Divide ``t`` by its (detached) largest magnitude over ``dims``.

    Returns:
        ``(t / m, log m)`` with ``log m`` of ``t``'s shape less ``dims``.
    """
    tiny = torch.finfo(t.dtype).tiny
    m = t.detach().abs().amax(dim=dims, keepdim=True).clamp_min(tiny)
    return t / m, m.log().squeeze(dims)


def tree_product(mats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ordered product ``M_0 M_1 ... M_{n-1}`` per sample, in a balanced tree with rescaling.

    Args:
        mats: ``[B, n, D, D]`` with ``n >= 1``.

    Returns:
        ``(P, log_scale)``: ``P: [B, D, D]``, ``log_scale: [B]``; the product is
        ``exp(log_scale) * P``.
    """
    log_scale = mats.new_zeros(mats.shape[0])
    while mats.shape[1] > 1:
        odd = mats[:, -1:] if mats.shape[1] % 2 else None
        even = mats[:, : mats.shape[1] - (odd is not None)]
        mats = even[:, 0::2] @ even[:, 1::2]  # [B, n // 2, D, D], order kept: (0 1)(2 3)...
        if odd is not None:
            mats = torch.cat((mats, odd), dim=1)
        mats, logs = rescale(mats, (2, 3))
        log_scale = log_scale + logs.sum(1)
    return mats[:, 0], log_scale


def _transfer(cores: Sequence[torch.Tensor], phi: torch.Tensor) -> torch.Tensor:
    """``[B, n, D, D]`` transfer matrices of ``cores`` (each ``[D, d, D]``) at ``phi: [B, n, d]``."""
    return torch.einsum("bns,nasc->bnac", phi, torch.stack(list(cores)))


def side_vectors(
    cores: Sequence[torch.Tensor], phi: torch.Tensor, label_site: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The left and right environments of the label site, rescaled.

    Args:
        cores: ``N`` site tensors: ``[1, d, D]`` first, ``[D, d, 1]`` last, ``[D, d, D]`` inside,
            and ``[D, d, C, D]`` at ``label_site`` (boundaries may be the label site).
        phi: ``[B, N, d]`` local features.

    Returns:
        ``(left, right, log_scale)``: ``left: [B, D_l]`` (contraction of sites ``< label_site``),
        ``right: [B, D_r]`` (sites ``> label_site``) and ``log_scale: [B]`` of their product.
    """
    n = len(cores)
    b = phi.shape[0]
    log_scale = phi.new_zeros(b)
    left = phi.new_ones(b, 1)
    if label_site > 0:
        left = phi[:, 0] @ cores[0][0]  # [B, d] @ [d, D] -> [B, D]
        if label_site > 1:
            prod, logs = tree_product(_transfer(cores[1:label_site], phi[:, 1:label_site]))
            left = (left[:, None] @ prod)[:, 0]
            log_scale = log_scale + logs
    right = phi.new_ones(b, 1)
    if label_site < n - 1:
        right = phi[:, -1] @ cores[-1][..., 0].T  # [B, d] @ [d, D] -> [B, D]
        if label_site < n - 2:
            prod, logs = tree_product(
                _transfer(cores[label_site + 1 : -1], phi[:, label_site + 1 : -1])
            )
            right = (prod @ right[..., None])[..., 0]
            log_scale = log_scale + logs
    left, log_left = rescale(left, (1,))
    right, log_right = rescale(right, (1,))
    return left, right, log_scale + log_left + log_right


def mps_logits(cores: Sequence[torch.Tensor], phi: torch.Tensor, label_site: int) -> torch.Tensor:
    """``f^l(x) = W^l . Phi(x)`` for an MPS with the label index on ``label_site``.

    Args:
        cores: as in :func:`side_vectors`.
        phi: ``[B, N, d]`` local features.

    Returns:
        ``[B, C]``.
    """
    left, right, log_scale = side_vectors(cores, phi, label_site)
    value = contract("ba,bs,ascd,bd->bc", left, phi[:, label_site], cores[label_site], right)
    return value * log_scale.exp()[:, None]


def mean_square_weight(cores: Sequence[torch.Tensor], label_site: int) -> torch.Tensor:
    """``||W||^2 / d^N``: the squared Frobenius norm of the full weight tensor (summed over
    labels) divided by the number ``d^N`` of its entries per label.

    The MPS is contracted with itself site by site, ``E <- E . sum_s A^s (x) A^s / d``, a
    ``[D, D]`` environment per bond (``O(N D^3 d)``), rescaled like the chain (exactly, with a
    detached factor). The identity initialisation gives about ``C``.

    Args:
        cores: as in :func:`side_vectors`.

    Returns:
        a scalar.
    """
    env = cores[0].new_ones(1, 1)
    log_scale = cores[0].new_zeros(())
    for j, core in enumerate(cores):
        d = core.shape[1]
        pattern = "ab,asld,bsle->de" if j == label_site else "ab,asd,bse->de"
        env, logs = rescale(torch.einsum(pattern, env, core, core) / d, (0, 1))
        log_scale = log_scale + logs
    return env.reshape(()) * log_scale.exp()
