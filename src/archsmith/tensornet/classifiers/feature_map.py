"""The local feature map of tensor-network classifiers.

Stoudenmire & Schwab, "Supervised Learning with Quantum-Inspired Tensor Networks" (NeurIPS 2016),
eq. (3): each pixel ``x`` in [0, 1] becomes

    phi(x) = [cos(pi x / 2), sin(pi x / 2)],

a unit vector, so that a white pixel (0) and a black pixel (1) are orthogonal states and the
full input is the product state ``Phi(x) = phi(x_1) (x) ... (x) phi(x_N)`` of norm 1.

``norm="l1"`` divides ``phi`` by ``cos + sin`` (same direction, components summing to 1). A
classifier's prediction ``argmax_l W^l . Phi(x)`` is unchanged (each sample's outputs are
scaled by the positive number ``prod_j 1 / (cos + sin)``), but a near-identity MPS then passes
every input through with gain exactly 1, where the unit vectors give a gain of
``prod_j (cos + sin)``, up to ``2^(N/2)``: on 8x8 digits around ``e^6`` with a spread of ``e^7``
between samples, which makes the untrained logits huge and the loss's temperature differ from
sample to sample.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

__all__ = ["LOCAL_DIM", "local_feature_map"]

#: the dimension ``d`` of the local feature space
LOCAL_DIM = 2


def local_feature_map(
    x: torch.Tensor, scale: float = 1.0, norm: Literal["l2", "l1"] = "l2"
) -> torch.Tensor:
    """``phi(x) = [cos(pi s x / 2), sin(pi s x / 2)]`` per entry of ``x``.

    Args:
        x: ``[...]`` pixel values, meant to lie in [0, 1] (the ``digits`` tasks give pixels
            divided by 16).
        scale: ``s``, a fixed factor on the angle (``1``, the paper's map, sends [0, 1] onto a
            quarter turn; smaller values make neighbouring grey levels more alike).
        norm: ``"l2"``: unit vectors (the paper); ``"l1"``: the same vectors divided by
            ``cos + sin``.

    Returns:
        ``[..., 2]``.
    """
    angle = (0.5 * math.pi * scale) * x
    phi = torch.stack((torch.cos(angle), torch.sin(angle)), dim=-1)
    return phi / phi.sum(-1, keepdim=True) if norm == "l1" else phi
