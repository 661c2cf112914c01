"""TuckerLinear: a linear layer whose tensorized weight is in Tucker format.

The weight ``W: [M, N]`` is viewed as the tensor ``[m_1, ..., m_d, n_1, ..., n_d]`` and stored
as a core ``G: [R_1, ..., R_d, S_1, ..., S_d]`` with factors ``U_k: [m_k, R_k]`` and
``V_k: [n_k, S_k]`` (Tucker, 1966; as a layer: Kossaifi et al., "Tensor Regression Networks",
JMLR 2020, and tensorly-torch's ``FactorizedLinear(factorization="tucker")``). ``from_linear``
uses the truncated HOSVD; ``params=`` picks the core shape by the greedy of
:func:`archsmith.tensornet.core.tucker_core_shape`.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.registry import register_layer
from archsmith.tensornet.core import (
    choose_modes,
    contract,
    tucker_core_shape,
    tucker_hosvd,
    tucker_params,
    tucker_to_full,
)
from archsmith.tensornet.layers.base import DEFAULT_COMPRESSION, TensorLinear, factor_std

__all__ = ["TuckerLinear"]


def _modes(
    in_features: int,
    out_features: int,
    in_modes: Sequence[int] | None,
    out_modes: Sequence[int] | None,
    num_modes: int,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    in_m = tuple(in_modes) if in_modes is not None else choose_modes(in_features, num_modes)
    out_m = tuple(out_modes) if out_modes is not None else choose_modes(out_features, num_modes)
    return in_m, out_m


def _ranks(rank: int | Sequence[int], sizes: Sequence[int]) -> tuple[int, ...]:
    ranks = [rank] * len(sizes) if isinstance(rank, int) else list(rank)
    if len(ranks) != len(sizes):
        raise ArchsmithError(
            f"TuckerLinear: {len(ranks)} ranks for {len(sizes)} modes {tuple(sizes)}"
        )
    if any(r < 1 for r in ranks):
        raise ArchsmithError(f"TuckerLinear: ranks must be >= 1, got {rank}")
    return tuple(min(r, n) for r, n in zip(ranks, sizes, strict=True))


@register_layer("linear", "tucker")
class TuckerLinear(TensorLinear):
    """``y = W x + b`` with ``W`` a Tucker tensor (see the module docstring).

    Args:
        in_features, out_features: sizes (padded up when they factor badly).
        bias: add a bias ``[out]``.
        rank: an int caps every mode's rank (a mode's rank never exceeds its size, so a rank of
            ``max(modes)`` is exact), or one rank per mode, out modes first then in modes.
            Default: the largest uniform rank with about
            :data:`~archsmith.tensornet.layers.base.DEFAULT_COMPRESSION` x fewer weights.
        in_modes, out_modes: the factorizations of N and M (may differ in length).
        num_modes: modes per side when they are not given (default 2).

    Shapes: ``x: [..., in] -> [..., out]``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        rank: int | Sequence[int] | None = None,
        in_modes: Sequence[int] | None = None,
        out_modes: Sequence[int] | None = None,
        num_modes: int = 2,
    ) -> None:
        in_m, out_m = _modes(in_features, out_features, in_modes, out_modes, num_modes)
        super().__init__(in_features, out_features, bias, in_m, out_m)
        sizes = (*out_m, *in_m)
        if rank is None:
            rank = self.rank_for_params(
                in_features,
                out_features,
                max(1, in_features * out_features // DEFAULT_COMPRESSION),
                bias=False,
                in_modes=in_m,
                out_modes=out_m,
            )
        self.ranks = _ranks(rank, sizes)
        std = factor_std(in_features, len(sizes) + 1, math.prod(self.ranks))
        self.core = nn.Parameter(torch.randn(self.ranks) * std)
        self.factors = nn.ParameterList(
            nn.Parameter(torch.randn(n, r) * std) for n, r in zip(sizes, self.ranks, strict=True)
        )
        letters = iter(string.ascii_letters)
        batch = next(letters)
        idx = [next(letters) for _ in sizes]
        rnk = [next(letters) for _ in sizes]
        d = len(out_m)
        self._equation = (
            f"{batch}{''.join(idx[d:])},{''.join(rnk)},"
            + ",".join(f"{i}{r}" for i, r in zip(idx, rnk, strict=True))
            + f"->{batch}{''.join(idx[:d])}"
        )

    def rank_repr(self) -> Any:
        return self.ranks

    def _contract(self, x: torch.Tensor) -> torch.Tensor:
        y = contract(
            self._equation, x.reshape(x.shape[0], *self.in_modes), self.core, *self.factors
        )
        return y.reshape(x.shape[0], self.padded_out)

    def _padded_weight(self) -> torch.Tensor:
        return tucker_to_full(self.core, list(self.factors)).reshape(
            self.padded_out, self.padded_in
        )

    @classmethod
    def param_count(
        cls,
        in_features: int,
        out_features: int,
        rank: int | Sequence[int],
        *,
        bias: bool = True,
        in_modes: Sequence[int] | None = None,
        out_modes: Sequence[int] | None = None,
        num_modes: int = 2,
    ) -> int:
        """Parameters of ``TuckerLinear(in_features, out_features, bias, rank=rank, ...)``."""
        in_m, out_m = _modes(in_features, out_features, in_modes, out_modes, num_modes)
        sizes = (*out_m, *in_m)
        return tucker_params(sizes, _ranks(rank, sizes)) + (out_features if bias else 0)

    @classmethod
    def max_rank(cls, in_features: int, out_features: int, **options: Any) -> int:
        """The largest mode size: the uniform rank at which the format is exact."""
        in_m, out_m = _modes(
            in_features,
            out_features,
            options.get("in_modes"),
            options.get("out_modes"),
            options.get("num_modes", 2),
        )
        return max((*in_m, *out_m))

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
    ) -> TuckerLinear:
        out_f, in_f = weight.shape
        in_m, out_m = _modes(
            in_f,
            out_f,
            options.get("in_modes"),
            options.get("out_modes"),
            options.get("num_modes", 2),
        )
        tensor = cls._pad_weight(weight, out_m, in_m).reshape(*out_m, *in_m)
        if weight_budget is not None:
            rank = tucker_core_shape(tensor, weight_budget)
        elif rank is not None:
            rank = _ranks(rank, tensor.shape)
        core, factors = tucker_hosvd(tensor, ranks=rank, rel_error=rel_error)
        layer = cls(in_f, out_f, bias, rank=tuple(core.shape), in_modes=in_m, out_modes=out_m)
        layer._load_factors([core, *factors])
        return layer
