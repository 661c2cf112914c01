"""BTTLinear: the Block Tensor-Train layer of Qiu, Potapczynski, Finzi, Goldblum and Wilson,
"Compute Better Spent: Replacing Dense Layers with Structured Matrices" (ICML 2024).

With ``in = n_1 n_2`` and ``out = m_1 m_2`` the weight is, for rank r,

    W[(a, b), (c, d)] = sum_{s < r} L[a, c, s, b] R[c, d, a, s]

(a < m_1, b < m_2, c < n_1, d < n_2): each ``[m_2, n_2]`` block ``W[a, :, c, :]`` has rank r
and shares its factors' "other" index with its neighbours, which is what makes the product
cheap. At r = 1 it is a Monarch matrix (Dao et al., 2022). The forward pass is two batched
matmuls, and costs as many multiply-adds per row as the layer has weights::

    x^T [n_1, n_2, B] --bmm over c--> [n_1, m_1 r, B] --(c <-> a)--> [m_1, n_1 r, B]
      --bmm over a--> [m_1, m_2, B] -> y [B, out]

The batch is kept innermost so that the exchange of c and a between the two products moves
contiguous ``r B`` chunks rather than r-element ones (at 1024 x 1024, batch 256, the forward
runs about 1.2-1.5x faster than with the batch outermost).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.registry import register_layer
from archsmith.tensornet.core import choose_modes, largest_uniform_rank
from archsmith.tensornet.layers.base import DEFAULT_COMPRESSION, TensorLinear, factor_std

__all__ = ["BTTLinear"]


def _modes(
    in_features: int,
    out_features: int,
    in_modes: Sequence[int] | None,
    out_modes: Sequence[int] | None,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    in_m = tuple(in_modes) if in_modes is not None else choose_modes(in_features, 2)
    out_m = tuple(out_modes) if out_modes is not None else choose_modes(out_features, 2)
    if len(in_m) != 2 or len(out_m) != 2:
        raise ArchsmithError(f"BTTLinear: needs two in and two out modes, got {in_m} and {out_m}")
    return in_m, out_m


@register_layer("linear", "btt")
class BTTLinear(TensorLinear):
    """``y = W x + b`` with ``W`` a two-core block tensor-train (see the module docstring).

    Args:
        in_features, out_features: sizes (padded up when they factor badly).
        bias: add a bias ``[out]``.
        rank: r, the rank of every ``[m_2, n_2]`` block; exact at ``min(m_2, n_2)``. Default: the
            largest r with about :data:`~archsmith.tensornet.layers.base.DEFAULT_COMPRESSION` x
            fewer weights (at least 1).
        in_modes, out_modes: ``(n_1, n_2)`` and ``(m_1, m_2)``; default balanced.

    Parameters: ``core_out: [m_1, n_1, r, m_2]`` (L) and ``core_in: [n_1, n_2, m_1, r]`` (R),
    ``r (m_1 n_1 m_2 + n_1 n_2 m_1)`` weights. Shapes: ``x: [..., in] -> [..., out]``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        rank: int | None = None,
        in_modes: Sequence[int] | None = None,
        out_modes: Sequence[int] | None = None,
    ) -> None:
        in_m, out_m = _modes(in_features, out_features, in_modes, out_modes)
        super().__init__(in_features, out_features, bias, in_m, out_m)
        if rank is None:
            rank = self.rank_for_params(
                in_features,
                out_features,
                max(1, in_features * out_features // DEFAULT_COMPRESSION),
                bias=False,
                in_modes=in_m,
                out_modes=out_m,
            )
        if rank < 1:
            raise ArchsmithError(f"BTTLinear: rank must be >= 1, got {rank}")
        self.rank = rank
        (n1, n2), (m1, m2) = in_m, out_m
        std = factor_std(in_features, 2, rank)
        self.core_out = nn.Parameter(torch.randn(m1, n1, rank, m2) * std)
        self.core_in = nn.Parameter(torch.randn(n1, n2, m1, rank) * std)

    def rank_repr(self) -> Any:
        return self.rank

    def _contract(self, x: torch.Tensor) -> torch.Tensor:
        (n1, n2), (m1, m2), r, b = self.in_modes, self.out_modes, self.rank, x.shape[0]
        xt = x.t().contiguous().reshape(n1, n2, b)  # [n1, n2, B]: one 2-D transpose
        w_in = self.core_in.permute(0, 2, 3, 1).reshape(n1, m1 * r, n2)  # [c, (a s), d]
        h = torch.bmm(w_in, xt)  # [n1, m1 r, B]
        h = h.reshape(n1, m1, r * b).transpose(0, 1).reshape(m1, n1 * r, b)  # [m1, n1 r, B]
        w_out = self.core_out.permute(0, 3, 1, 2).reshape(m1, m2, n1 * r)  # [a, b, (c s)]
        y = torch.bmm(w_out, h)  # [m1, m2, B]
        return y.reshape(m1 * m2, b).t().contiguous()

    def _padded_weight(self) -> torch.Tensor:
        w = torch.einsum("acsb,cdas->abcd", self.core_out, self.core_in)
        return w.reshape(self.padded_out, self.padded_in)

    @classmethod
    def param_count(
        cls,
        in_features: int,
        out_features: int,
        rank: int,
        *,
        bias: bool = True,
        in_modes: Sequence[int] | None = None,
        out_modes: Sequence[int] | None = None,
    ) -> int:
        """Parameters of ``BTTLinear(in_features, out_features, bias, rank=rank, ...)``."""
        (n1, n2), (m1, m2) = _modes(in_features, out_features, in_modes, out_modes)
        return rank * (m1 * n1 * m2 + n1 * n2 * m1) + (out_features if bias else 0)

    @classmethod
    def max_rank(cls, in_features: int, out_features: int, **options: Any) -> int:
        """``min(m_2, n_2)``: the rank at which every block, hence the layer, is exact."""
        (_, n2), (_, m2) = _modes(
            in_features, out_features, options.get("in_modes"), options.get("out_modes")
        )
        return min(m2, n2)

    @classmethod
    def rank_for_params(
        cls, in_features: int, out_features: int, params: int, *, bias: bool = True, **options: Any
    ) -> int:
        """The largest rank with at most ``params`` parameters (at least 1; may exceed
        :meth:`max_rank`, where extra rank adds parameters but no accuracy)."""
        return largest_uniform_rank(
            lambda r: cls.param_count(in_features, out_features, r, bias=bias, **options),
            params,
            max(params, 1),
        )

    @classmethod
    def _from_weight(
        cls,
        weight: torch.Tensor,
        bias: bool,
        *,
        rank: Any,
        rel_error: float | None,
        weight_budget: int | None,
        **options: Any,
    ) -> BTTLinear:
        out_f, in_f = weight.shape
        in_m, out_m = _modes(in_f, out_f, options.get("in_modes"), options.get("out_modes"))
        (n1, n2), (m1, m2) = in_m, out_m
        blocks = cls._pad_weight(weight, out_m, in_m).reshape(m1, m2, n1, n2).permute(0, 2, 1, 3)
        u, s, vh = torch.linalg.svd(
            blocks, full_matrices=False
        )  # [a, c, b, k], [a, c, k], [a, c, k, d]
        full = s.shape[-1]
        if weight_budget is not None:
            rank = min(
                cls.rank_for_params(
                    in_f, out_f, weight_budget, bias=False, in_modes=in_m, out_modes=out_m
                ),
                full,
            )
        elif rel_error is not None:
            # one rank r for all blocks: the smallest whose total dropped energy fits
            dropped = (
                (s**2).sum((0, 1)).flip(0).cumsum(0).flip(0)
            )  # dropped[r] = energy of s[..., r:]
            budget = (rel_error * float(weight.norm())) ** 2
            ok = torch.nonzero(torch.cat([dropped, dropped.new_zeros(1)]) <= budget)
            rank = max(1, int(ok[0]))
        if rank < 1:
            raise ArchsmithError(f"BTTLinear: rank must be >= 1, got {rank}")
        keep = min(rank, full)
        root = s[..., :keep].sqrt()
        core_out = (u[..., :keep] * root[:, :, None, :]).permute(0, 1, 3, 2)  # [a, c, s, b]
        core_in = (root[..., None] * vh[:, :, :keep]).permute(1, 3, 0, 2)  # [c, d, a, s]
        if keep < rank:  # ranks beyond the block size: zero components
            core_out = torch.cat([core_out, core_out.new_zeros(m1, n1, rank - keep, m2)], 2)
            core_in = torch.cat([core_in, core_in.new_zeros(n1, n2, m1, rank - keep)], 3)
        layer = cls(in_f, out_f, bias, rank=rank, in_modes=in_m, out_modes=out_m)
        layer._load_factors([core_out, core_in])
        return layer
