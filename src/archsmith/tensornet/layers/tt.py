"""TTLinear: a linear layer whose weight is a TT-matrix (MPO).

Novikov, Podoprikhin, Osokin and Vetrov, "Tensorizing Neural Networks" (NeurIPS 2015); the MPO
layers of CompactifAI (Tomut et al., 2024) are the same format.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.registry import register_layer
from archsmith.tensornet.core import (
    choose_modes,
    contract,
    max_tt_ranks,
    tt_matrix_from_dense,
    tt_matrix_to_dense,
    tt_params,
    tt_ranks_for_budget,
)
from archsmith.tensornet.core.contract import path_flops
from archsmith.tensornet.core.tt_matrix import interleave_modes, tt_matrix_apply_two_cores
from archsmith.tensornet.layers.base import DEFAULT_COMPRESSION, TensorLinear, factor_std

__all__ = [
    "LAYOUTS",
    "RECONSTRUCT_FACTOR",
    "TTLinear",
    "default_num_cores",
    "fast_modes",
    "prefers_dense",
    "route_flops",
    "tt_fast",
]

#: the factorized contraction is used only while its FLOPs stay below the dense route's over this
#: factor: its pairwise steps permute ``[B, ..., r]`` intermediates and their backward repeats
#: that, so per FLOP it runs about half as fast as one large matmul (measured at 1024 x 1024,
#: batch 256, ranks 8-42, by ``archsmith bench tensornet``, on einsum's three-core path; the
#: two-matmul path of two-core layers permutes less, so for them the factor leans to dense)
RECONSTRUCT_FACTOR = 2.0


def default_num_cores(in_features: int, out_features: int) -> int:
    """Cores for a TT layer when none are given: 2 up to 128 features, 3 up to 8192, else 4."""
    n = max(in_features, out_features)
    return 2 if n <= 128 else 3 if n <= 8192 else 4


#: mode layouts :class:`TTLinear` can choose by itself
LAYOUTS = ("balanced", "fast")
Layout = Literal["balanced", "fast"]


def fast_modes(in_features: int, out_features: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Two-core modes whose factorized contraction is cheapest at a given rank:
    ``in = (2, N / 2)``, ``out = (M / 2, 2)``, an odd size above 3 padded by one (sizes up to 3
    stay as they are: ``(n, 1)``).

    With cores ``[1, M/2, 2, r]`` and ``[r, 2, N/2, 1]`` the input meets the second core first
    (``4 B N r`` FLOPs) and the first core next (``4 B M r``): ``4 B r (N + M)`` against the
    dense ``2 B N M``, while the weights number ``r (M + N)`` - the forward costs about
    ``2 / compression`` of dense's, where a balanced layout costs more than dense below a few
    hundred x (Qiu et al., "Compute Better Spent", ICML 2024, section 3). A split ``(p, N/p)``
    costs ``p / 2`` times as much, so an odd size pads to even rather than split off its
    smallest factor. The matrix is a sum of ``r`` Kronecker products
    ``A_k [M/2, 2] (x) B_k [2, N/2]``.
    """

    def split(n: int) -> tuple[int, int]:
        if n <= 3:
            return n, 1
        return 2, (n + 1) // 2

    (p, n2), (q, m1) = split(in_features), split(out_features)
    return (p, n2), (m1, q)


def _modes(
    in_features: int,
    out_features: int,
    in_modes: Sequence[int] | None,
    out_modes: Sequence[int] | None,
    num_cores: int | None,
    layout: Layout = "balanced",
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if layout not in LAYOUTS:
        raise ArchsmithError(f"TTLinear: layout must be one of {LAYOUTS}, got {layout!r}")
    if layout == "fast" and (
        in_modes is not None or out_modes is not None or num_cores not in (None, 2)
    ):
        raise ArchsmithError(
            "TTLinear: layout='fast' chooses its own two-core modes; drop in_modes, out_modes "
            "and num_cores (or give both modes with the default layout)"
        )
    if in_modes is not None and out_modes is not None:
        if len(in_modes) != len(out_modes):
            raise ArchsmithError(
                f"TTLinear: {len(in_modes)} in_modes vs {len(out_modes)} out_modes"
            )
        return tuple(in_modes), tuple(out_modes)
    if layout == "fast":
        return fast_modes(in_features, out_features)
    d = (
        len(in_modes or out_modes or ())
        or num_cores
        or default_num_cores(in_features, out_features)
    )
    return (
        tuple(in_modes) if in_modes is not None else choose_modes(in_features, d),
        tuple(out_modes) if out_modes is not None else choose_modes(out_features, d),
    )


def _options_modes(
    in_features: int, out_features: int, options: dict[str, Any]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """:func:`_modes` from a layer's keyword options (``from_linear``'s, ``max_rank``'s)."""
    return _modes(
        in_features,
        out_features,
        options.get("in_modes"),
        options.get("out_modes"),
        options.get("num_cores"),
        options.get("layout", "balanced"),
    )


@lru_cache(maxsize=1024)
def route_flops(
    batch: int, in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...]
) -> tuple[int, int]:
    """Forward FLOPs ``(factorized, dense)`` of a TT layer on ``batch`` rows.

    ``factorized``: opt_einsum's path contracting the input with the cores; ``dense``: the
    weight's reconstruction (the chain of core products of
    :func:`~archsmith.tensornet.core.tt_to_full`) plus the matmul, ``2 B N M``.
    """
    d = len(in_modes)
    full = (1, *ranks, 1)
    sizes = [m * n for m, n in zip(out_modes, in_modes, strict=True)]
    cores = [
        (full[k], m, n, full[k + 1])
        for k, (m, n) in enumerate(zip(out_modes, in_modes, strict=True))
    ]
    factorized = path_flops(TTLinear._build_equation(d), ((batch, *in_modes), *cores))
    rebuild, left = 0, 1
    for k in range(1, d):  # [left, r_k] @ [r_k, s_k r_{k+1}]
        left *= sizes[k - 1]
        rebuild += 2 * left * full[k] * sizes[k] * full[k + 1]
    return factorized, rebuild + 2 * batch * math.prod(in_modes) * math.prod(out_modes)


@lru_cache(maxsize=1024)
def _two_matmuls_pay(
    batch: int, in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...]
) -> bool:
    """Whether :func:`~archsmith.tensornet.core.tt_matrix.tt_matrix_apply_two_cores` (second
    core first) costs no more FLOPs than opt_einsum's path, which may multiply the cores first."""
    (n1, n2), (m1, m2), (r,) = in_modes, out_modes, ranks
    two_matmuls = 2 * batch * n1 * r * m2 * (n2 + m1)
    return two_matmuls <= route_flops(batch, in_modes, out_modes, ranks)[0]


def prefers_dense(
    batch: int, in_modes: tuple[int, ...], out_modes: tuple[int, ...], ranks: tuple[int, ...]
) -> bool:
    """Whether a TT layer should rebuild its weight and run one dense matmul for a batch of
    ``batch`` rows rather than contract the input with the cores: when that costs at most
    :data:`RECONSTRUCT_FACTOR` times the factorized FLOPs (:func:`route_flops`). That happens at
    large batches and ranks, where the TT-matrix's factorized cost exceeds ``B N M`` anyway
    (Qiu et al., "Compute Better Spent", ICML 2024, section 3).
    """
    factorized, dense = route_flops(batch, in_modes, out_modes, ranks)
    return dense <= RECONSTRUCT_FACTOR * factorized


def _bond_ranks(rank: int | Sequence[int], caps: Sequence[int]) -> tuple[int, ...]:
    ranks = [rank] * len(caps) if isinstance(rank, int) else list(rank)
    if len(ranks) != len(caps):
        raise ArchsmithError(f"TTLinear: {len(ranks)} ranks for {len(caps)} bonds")
    if any(r < 1 for r in ranks):
        raise ArchsmithError(f"TTLinear: ranks must be >= 1, got {rank}")
    return tuple(min(r, c) for r, c in zip(ranks, caps, strict=True))


@register_layer("linear", "tt")
class TTLinear(TensorLinear):
    """``y = W x + b`` with ``W: [out, in]`` a TT-matrix of cores ``[r_{k-1}, m_k, n_k, r_k]``.

    Args:
        in_features, out_features: sizes N and M (padded up when they factor badly).
        bias: add a bias ``[out]``.
        rank: the bond dimension: an int caps every bond ``r_k`` (bonds never exceed the exact
            ``min(prod_{i<=k} m_i n_i, prod_{i>k} m_i n_i)``, so a large rank is exact), or one
            int per bond. Default: the largest uniform rank with about
            :data:`~archsmith.tensornet.layers.base.DEFAULT_COMPRESSION` x fewer weights.
        in_modes, out_modes: factorizations of N and M (same length d); default as ``layout``.
        num_cores: d when modes are not given (default :func:`default_num_cores`).
        layout: how to choose modes that are not given: ``"balanced"`` (default; the usual
            TT-matrix, Novikov et al., whose factorized contraction costs more FLOPs than the
            dense matmul from 8x down to a few hundred x compression) or ``"fast"`` (two cores
            with the cheapest contraction, about ``2 / compression`` of dense's FLOPs:
            :func:`fast_modes`).

    Shapes: ``x: [..., in] -> [..., out]``. Freshly built cores are i.i.d. normal with the std
    that gives the reconstructed weight the variance of ``nn.Linear``'s init, ``1 / (3 in)``.

    Attributes:
        contraction: how the forward runs: ``"auto"`` (default: :func:`prefers_dense` decides
            per batch size), ``"factorized"`` (contract the input with the cores along
            opt_einsum's path) or ``"dense"`` (rebuild the weight, one matmul). Both give the
            same function and gradients.
    """

    contraction: str = "auto"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        rank: int | Sequence[int] | None = None,
        in_modes: Sequence[int] | None = None,
        out_modes: Sequence[int] | None = None,
        num_cores: int | None = None,
        layout: Layout = "balanced",
    ) -> None:
        in_m, out_m = _modes(in_features, out_features, in_modes, out_modes, num_cores, layout)
        super().__init__(in_features, out_features, bias, in_m, out_m)
        caps = max_tt_ranks([m * n for m, n in zip(out_m, in_m, strict=True)])
        if rank is None:
            rank = self.rank_for_params(
                in_features,
                out_features,
                max(1, in_features * out_features // DEFAULT_COMPRESSION),
                bias=False,
                in_modes=in_m,
                out_modes=out_m,
            )
        self.ranks = _bond_ranks(rank, caps)
        full = (1, *self.ranks, 1)
        std = factor_std(in_features, len(in_m), math.prod(self.ranks))
        self.cores = nn.ParameterList(
            nn.Parameter(torch.randn(full[k], m, n, full[k + 1]) * std)
            for k, (m, n) in enumerate(zip(out_m, in_m, strict=True))
        )
        self._equation = self._build_equation(len(in_m))

    @staticmethod
    def _build_equation(d: int) -> str:
        letters = iter(string.ascii_letters)
        batch = next(letters)
        ins = [next(letters) for _ in range(d)]
        outs = [next(letters) for _ in range(d)]
        bonds = [next(letters) for _ in range(d + 1)]
        cores = [f"{bonds[k]}{outs[k]}{ins[k]}{bonds[k + 1]}" for k in range(d)]
        return f"{batch}{''.join(ins)}," + ",".join(cores) + f"->{batch}{''.join(outs)}"

    def rank_repr(self) -> Any:
        return self.ranks

    def _contract(self, x: torch.Tensor) -> torch.Tensor:
        if self.contraction == "dense" or (
            self.contraction == "auto"
            and prefers_dense(x.shape[0], self.in_modes, self.out_modes, self.ranks)
        ):
            return F.linear(x, self._padded_weight())
        if self.contraction not in ("auto", "factorized"):
            raise ArchsmithError(
                f"TTLinear.contraction must be 'auto', 'factorized' or 'dense', got {self.contraction!r}"
            )
        # two cores: plain matmuls wherever they cost no more than opt_einsum's path
        if len(self.cores) == 2 and _two_matmuls_pay(
            x.shape[0], self.in_modes, self.out_modes, self.ranks
        ):
            return tt_matrix_apply_two_cores(x, self.cores[0], self.cores[1])
        y = contract(self._equation, x.reshape(x.shape[0], *self.in_modes), *self.cores)
        return y.reshape(x.shape[0], self.padded_out)

    def _padded_weight(self) -> torch.Tensor:
        return tt_matrix_to_dense(list(self.cores))

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
        num_cores: int | None = None,
        layout: Layout = "balanced",
    ) -> int:
        """Parameters of ``TTLinear(in_features, out_features, bias, rank=rank, ...)``."""
        in_m, out_m = _modes(in_features, out_features, in_modes, out_modes, num_cores, layout)
        sizes = [m * n for m, n in zip(out_m, in_m, strict=True)]
        return tt_params(sizes, _bond_ranks(rank, max_tt_ranks(sizes))) + (
            out_features if bias else 0
        )

    @classmethod
    def max_rank(cls, in_features: int, out_features: int, **options: Any) -> int:
        """The smallest uniform rank at which the format is exact (every bond at its cap)."""
        in_m, out_m = _options_modes(in_features, out_features, options)
        return max(max_tt_ranks([m * n for m, n in zip(out_m, in_m, strict=True)]), default=1)

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
    ) -> TTLinear:
        out_f, in_f = weight.shape
        in_m, out_m = _options_modes(in_f, out_f, options)
        padded = cls._pad_weight(weight, out_m, in_m)
        if weight_budget is not None:
            rank = tt_ranks_for_budget(interleave_modes(padded, out_m, in_m), weight_budget)
        cores = tt_matrix_from_dense(padded, in_m, out_m, max_rank=rank, rel_error=rel_error)
        layer = cls(
            in_f,
            out_f,
            bias,
            rank=[int(c.shape[-1]) for c in cores[:-1]],
            in_modes=in_m,
            out_modes=out_m,
        )
        layer._load_factors(cores)
        return layer


@register_layer("linear", "tt_fast")
def tt_fast(in_features: int, out_features: int, bias: bool = True, **options: Any) -> TTLinear:
    """``linear_layer="tt_fast"``: :class:`TTLinear` with ``layout="fast"`` (two cores whose
    contraction costs about ``2 / compression`` of the dense layer's FLOPs)."""
    if "layout" in options:
        raise ArchsmithError("tt_fast: the layout is 'fast' by definition; use 'tt' for others")
    return TTLinear(in_features, out_features, bias, layout="fast", **options)
