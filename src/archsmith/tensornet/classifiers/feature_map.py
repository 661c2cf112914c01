"""The local feature map of tensor-network classifiers.

Stoudenmire & Schwab, "Supervised Learning with Quantum-Inspired Tensor Networks" (NeurIPS 2016),
eq. (3): each pixel ``x`` in [0, 1] becomes

    phi(x) = [cos(pi x / 2), sin(pi x / 2)],

a unit vector, so that a white pixel (0) and a black pixel (1) are orthogonal states and the
full input is the product state ``Phi(x) = phi(x_1) (x) ... (x) phi(x_N)`` of norm 1.

Local dimension ``d > 2`` uses the generalisation of Stoudenmire's follow-up ("Learning Relevant
Features of Data with Multi-scale Tensor Networks", 2018), the spin-coherent-state map

    phi_s(x) = sqrt(binom(d - 1, s - 1)) cos^(d - s)(pi x / 2) sin^(s - 1)(pi x / 2),  s = 1..d,

whose squared components are the terms of ``(cos^2 + sin^2)^(d - 1) = 1``: still a unit vector,
black and white still orthogonal, and ``d = 2`` is the paper's map. It holds the monomials of
degree ``d - 1`` in ``(cos, sin)``, so a site can respond non-linearly to its pixel's grey level.

``norm="l1"`` divides ``phi`` by the sum of its components (same direction, components summing to
1). A classifier's prediction ``argmax_l W^l . Phi(x)`` is unchanged (each sample's outputs are
scaled by one positive number), but a near-identity MPS then passes every input through with
gain exactly 1, where the unit vectors give a gain of ``prod_j sum_s phi_s(x_j)``, up to
``2^(N/2)`` for ``d = 2``: on 8x8 digits around ``e^6`` with a spread of ``e^7`` between samples,
which makes the untrained logits huge and the loss's temperature differ from sample to sample.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

__all__ = ["LOCAL_DIM", "local_feature_map"]

#: the default dimension ``d`` of the local feature space (the paper's)
LOCAL_DIM = 2


def local_feature_map(
    x: torch.Tensor,
    scale: float = 1.0,
    norm: Literal["l2", "l1"] = "l2",
    dim: int = LOCAL_DIM,
) -> torch.Tensor:
    """``phi_s(x) = sqrt(binom(d-1, s-1)) cos^(d-s)(pi s x / 2) sin^(s-1)(pi s x / 2)`` per entry.

    Args:
        x: ``[...]`` pixel values, meant to lie in [0, 1] (the ``digits`` tasks give pixels
            divided by 16).
        scale: a fixed factor on the angle (``1``, the paper's map, sends [0, 1] onto a
            quarter turn; smaller values make neighbouring grey levels more alike).
        norm: ``"l2"``: unit vectors (the paper); ``"l1"``: the same vectors divided by the
            sum of their components.
        dim: ``d >= 2``, the local dimension (``2``: ``[cos, sin]``).

    Returns:
        ``[..., d]``.
    """
    if dim < 2:
        raise ValueError(f"local feature map: dim must be >= 2, got {dim}")
    angle = (0.5 * math.pi * scale) * x
    c, s = torch.cos(angle), torch.sin(angle)
    if dim == 2:
        phi = torch.stack((c, s), dim=-1)
    else:
        k = torch.arange(dim, dtype=x.dtype, device=x.device)  # s - 1
        coef = torch.tensor([math.sqrt(math.comb(dim - 1, i)) for i in range(dim)], dtype=x.dtype)
        phi = coef.to(x.device) * c[..., None] ** (dim - 1 - k) * s[..., None] ** k
    return phi / phi.sum(-1, keepdim=True) if norm == "l1" else phi
