"""CPLinear: a linear layer whose tensorized weight is a sum of rank-one tensors (CP).

The weight ``W: [M, N]`` viewed as ``[m_1, ..., m_d, n_1, ..., n_d]`` is
``sum_{r < R} U_1[:, r] o ... o U_d[:, r] o V_1[:, r] o ... o V_d[:, r]`` (Lebedev et al.,
"Speeding-up Convolutional Neural Networks Using Fine-tuned CP-Decomposition", ICLR 2015;
tensorly-torch's ``FactorizedLinear(factorization="cp")``). ``from_linear`` runs ALS initialised
from the SVD (:func:`archsmith.tensornet.core.cp_als`).
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
    cp_als,
    cp_params,
    cp_to_full,
)
from archsmith.tensornet.layers.base import DEFAULT_COMPRESSION, TensorLinear, factor_std

__all__ = ["CPLinear", "exact_cp"]


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


def exact_cp(tensor: torch.Tensor) -> list[torch.Tensor]:
    """An exact CP of ``tensor`` with rank ``prod`` of all sizes but the largest: one term per
    index of the other modes, unit vectors there and the matching fiber in the largest mode."""
    sizes = tuple(tensor.shape)
    big = max(range(len(sizes)), key=lambda k: sizes[k])
    others = [k for k in range(len(sizes)) if k != big]
    rank = math.prod(sizes[k] for k in others)
    grid = torch.cartesian_prod(*[torch.arange(sizes[k]) for k in others]).reshape(
        rank, len(others)
    )
    factors: list[torch.Tensor] = []
    for k in range(len(sizes)):
        if k == big:
            factors.append(tensor.movedim(big, -1).reshape(rank, sizes[big]).T.clone())
        else:
            col = grid[:, others.index(k)]
            f = tensor.new_zeros(sizes[k], rank)
            f[col, torch.arange(rank)] = 1.0
            factors.append(f)
    return factors


@register_layer("linear", "cp")
class CPLinear(TensorLinear):
    """``y = W x + b`` with ``W`` a rank-R CP tensor (see the module docstring).

    Args:
        in_features, out_features: sizes (padded up when they factor badly).
        bias: add a bias ``[out]``.
        rank: R, the number of rank-one terms. ``from_linear`` is exact from
            :meth:`max_rank` (product of all mode sizes but the largest) up. Default: the largest R
            with about :data:`~archsmith.tensornet.layers.base.DEFAULT_COMPRESSION` x fewer weights.
        in_modes, out_modes: the factorizations of N and M.
        num_modes: modes per side when they are not given (default 2).

    Shapes: ``x: [..., in] -> [..., out]``.
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
        if rank < 1:
            raise ArchsmithError(f"CPLinear: rank must be >= 1, got {rank}")
        self.rank = rank
        std = factor_std(in_features, len(sizes), rank)
        self.factors = nn.ParameterList(nn.Parameter(torch.randn(n, rank) * std) for n in sizes)
        letters = iter(string.ascii_letters)
        batch, r = next(letters), next(letters)
        idx = [next(letters) for _ in sizes]
        d = len(out_m)
        self._equation = (
            f"{batch}{''.join(idx[d:])},"
            + ",".join(f"{i}{r}" for i in idx)
            + f"->{batch}{''.join(idx[:d])}"
        )

    def rank_repr(self) -> Any:
        return self.rank

    def _contract(self, x: torch.Tensor) -> torch.Tensor:
        y = contract(self._equation, x.reshape(x.shape[0], *self.in_modes), *self.factors)
        return y.reshape(x.shape[0], self.padded_out)

    def _padded_weight(self) -> torch.Tensor:
        return cp_to_full(list(self.factors)).reshape(self.padded_out, self.padded_in)

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
        num_modes: int = 2,
    ) -> int:
        """Parameters of ``CPLinear(in_features, out_features, bias, rank=rank, ...)``."""
        in_m, out_m = _modes(in_features, out_features, in_modes, out_modes, num_modes)
        return cp_params((*out_m, *in_m), rank) + (out_features if bias else 0)

    @classmethod
    def max_rank(cls, in_features: int, out_features: int, **options: Any) -> int:
        """Product of all mode sizes but the largest: :func:`exact_cp`'s rank."""
        in_m, out_m = _modes(
            in_features,
            out_features,
            options.get("in_modes"),
            options.get("out_modes"),
            options.get("num_modes", 2),
        )
        sizes = (*out_m, *in_m)
        return math.prod(sizes) // max(sizes)

    @staticmethod
    def _decompose(tensor: torch.Tensor, rank: int) -> list[torch.Tensor]:
        exact = math.prod(tensor.shape) // max(tensor.shape)
        if rank >= exact:
            factors = exact_cp(tensor)
            return [torch.cat([f, f.new_zeros(f.shape[0], rank - exact)], 1) for f in factors]
        return cp_als(tensor, rank, n_iter=100, tol=1e-7)

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
    ) -> CPLinear:
        out_f, in_f = weight.shape
        in_m, out_m = _modes(
            in_f,
            out_f,
            options.get("in_modes"),
            options.get("out_modes"),
            options.get("num_modes", 2),
        )
        tensor = cls._pad_weight(weight, out_m, in_m).reshape(*out_m, *in_m)
        exact = math.prod(tensor.shape) // max(tensor.shape)
        if weight_budget is not None:
            rank = cls.rank_for_params(
                in_f, out_f, weight_budget, bias=False, in_modes=in_m, out_modes=out_m
            )
        if rel_error is not None:
            rank, factors = cls._rank_for_error(tensor, rel_error, exact)
        else:
            if rank < 1:
                raise ArchsmithError(f"CPLinear: rank must be >= 1, got {rank}")
            factors = cls._decompose(tensor, rank)
        layer = cls(in_f, out_f, bias, rank=rank, in_modes=in_m, out_modes=out_m)
        layer._load_factors(factors)
        return layer

    @classmethod
    def _rank_for_error(
        cls, tensor: torch.Tensor, rel_error: float, exact: int
    ) -> tuple[int, list[torch.Tensor]]:
        """Smallest rank (by doubling then bisection over ALS fits) within ``rel_error``."""
        norm = float(tensor.norm()) or 1.0

        def fit(r: int) -> tuple[bool, list[torch.Tensor]]:
            f = cls._decompose(tensor, r)
            return float((cp_to_full(f) - tensor).norm()) / norm <= rel_error, f

        lo, hi = 0, 1
        ok, best = fit(1)
        while not ok and hi < exact:
            lo, hi = hi, min(2 * hi, exact)
            ok, best = fit(hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            ok_mid, f_mid = fit(mid)
            if ok_mid:
                hi, best = mid, f_mid
            else:
                lo = mid
        return hi, best
