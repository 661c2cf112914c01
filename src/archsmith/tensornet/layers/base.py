"""What every tensor-network linear layer shares: bias, padding, ``from_linear``, counts.

A layer maps ``x: [..., in_features] -> [..., out_features]`` through a structured weight
``W: [out_features, in_features]`` that it never forms in the forward pass. Sizes are
tensorized into modes (:func:`archsmith.tensornet.core.choose_modes`); when a size factors badly
(a prime) the layer works on the next size that factors well: the input is zero-padded and the
extra outputs dropped, so the effective weight is the top-left block of the padded one.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.tensornet.core import largest_uniform_rank

__all__ = ["DEFAULT_COMPRESSION", "TensorLinear", "dense_init_std", "factor_std"]

_T = TypeVar("_T", bound="TensorLinear")

#: default layers (built from a registry name with no rank) aim at this many times fewer
#: weight parameters than the dense layer they replace
DEFAULT_COMPRESSION = 8


def dense_init_std(in_features: int) -> float:
    """Std of :class:`torch.nn.Linear`'s default weight init, ``U(-1/sqrt(in), 1/sqrt(in))``:
    ``Var(W_ij) = 1 / (3 in)``."""
    return 1.0 / math.sqrt(3.0 * max(1, in_features))


def factor_std(in_features: int, num_factors: int, num_terms: int) -> float:
    """Std for each of ``num_factors`` i.i.d. zero-mean factor tensors so that the weight keeps
    the dense variance ``1 / (3 in)``.

    Every weight entry is a sum of ``num_terms`` products of one entry from each factor; products
    of independent zero-mean entries are uncorrelated, so ``Var(W_ij) = num_terms * prod_k
    sigma_k^2``. Equal ``sigma_k`` solve ``sigma^(2 num_factors) = 1 / (3 in num_terms)``.
    """
    target = dense_init_std(in_features) ** 2 / max(1, num_terms)
    return target ** (0.5 / num_factors)


class TensorLinear(nn.Module):
    """Base class: subclasses define the factors, :meth:`_contract` and :meth:`_padded_weight`.

    Attributes:
        in_features, out_features: the layer's sizes.
        in_modes, out_modes: the mode factorizations (products may exceed the sizes: padding).
        bias: ``[out_features]`` or None, initialised as :class:`torch.nn.Linear`'s.
    """

    in_features: int
    out_features: int
    in_modes: tuple[int, ...]
    out_modes: tuple[int, ...]

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool,
        in_modes: Sequence[int],
        out_modes: Sequence[int],
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ArchsmithError(
                f"{type(self).__name__}: sizes must be >= 1, got {in_features}, {out_features}"
            )
        self.in_features, self.out_features = in_features, out_features
        self.in_modes, self.out_modes = tuple(in_modes), tuple(out_modes)
        if math.prod(self.in_modes) < in_features or math.prod(self.out_modes) < out_features:
            raise ArchsmithError(
                f"{type(self).__name__}: modes {self.out_modes} x {self.in_modes} do not cover "
                f"[{out_features}, {in_features}]"
            )
        if bias:
            bound = 1.0 / math.sqrt(in_features)
            self.bias: nn.Parameter | None = nn.Parameter(
                torch.empty(out_features).uniform_(-bound, bound)
            )
        else:
            self.register_parameter("bias", None)

    @property
    def padded_in(self) -> int:
        return math.prod(self.in_modes)

    @property
    def padded_out(self) -> int:
        return math.prod(self.out_modes)

    @abstractmethod
    def _contract(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, padded_in] -> [B, padded_out]`` (no bias)."""

    @abstractmethod
    def _padded_weight(self) -> torch.Tensor:
        """The structured weight ``[padded_out, padded_in]``, differentiable in the factors."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [..., in_features] -> [..., out_features]``."""
        lead = x.shape[:-1]
        h = x.reshape(-1, self.in_features)
        if self.padded_in > self.in_features:
            h = F.pad(h, (0, self.padded_in - self.in_features))
        y = self._contract(h)
        if self.padded_out > self.out_features:
            y = y[:, : self.out_features]
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)

    def dense_weight(self) -> torch.Tensor:
        """The weight ``[out_features, in_features]`` this layer applies (differentiable)."""
        return self._padded_weight()[: self.out_features, : self.in_features]

    @property
    def num_params(self) -> int:
        """Trainable entries, bias included."""
        return sum(p.numel() for p in self.parameters())

    @property
    def compression(self) -> float:
        """Dense weight entries over this layer's weight entries (bias excluded)."""
        weight = self.num_params - (self.bias.numel() if self.bias is not None else 0)
        return self.in_features * self.out_features / max(1, weight)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"in_modes={self.in_modes}, out_modes={self.out_modes}, rank={self.rank_repr()}, "
            f"bias={self.bias is not None}"
        )

    def rank_repr(self) -> Any:
        return None

    # -- conversion -------------------------------------------------------------------------

    @classmethod
    def from_linear(
        cls: type[_T],
        linear: nn.Linear,
        *,
        rank: Any = None,
        rel_error: float | None = None,
        params: int | None = None,
        **options: Any,
    ) -> _T:
        """Decompose a dense :class:`torch.nn.Linear` into this format (bias copied).

        Exactly one of:
            rank: the format's rank (see the class docstring; ``cls.max_rank(...)`` is exact).
            rel_error: the smallest rank whose weight is within this relative Frobenius error
                (of the format's decomposition algorithm).
            params: the largest rank whose parameter count (bias included) fits.

        ``options`` are the format's own (``in_modes``, ``out_modes``, ``num_cores``, ...). The
        decomposition runs in float64 and the result takes the linear's dtype and device.
        """
        given = [
            k
            for k, v in (("rank", rank), ("rel_error", rel_error), ("params", params))
            if v is not None
        ]
        if len(given) != 1:
            raise ArchsmithError(
                f"{cls.__name__}.from_linear: give exactly one of rank, rel_error, params (got {given or 'none'})"
            )
        if rel_error is not None and not rel_error >= 0:
            raise ArchsmithError(
                f"{cls.__name__}.from_linear: rel_error must be >= 0, got {rel_error}"
            )
        if params is not None and params < 1:
            raise ArchsmithError(f"{cls.__name__}.from_linear: params must be >= 1, got {params}")
        weight = linear.weight.detach().to("cpu", torch.float64)
        out_f = weight.shape[0]
        has_bias = linear.bias is not None
        weight_budget = None if params is None else params - (out_f if has_bias else 0)
        if weight_budget is not None and weight_budget < 1:
            raise ArchsmithError(
                f"{cls.__name__}.from_linear: params={params} leaves no room beyond the bias"
            )
        if weight_budget is not None:
            smallest = cls._smallest_weight_count(weight.shape[1], out_f, options)
            if smallest > weight_budget:
                raise ArchsmithError(
                    f"{cls.__name__}.from_linear: params={params} is below the smallest "
                    f"{cls.__name__} of this shape ({smallest + (out_f if has_bias else 0)} at rank 1)"
                )
        layer = cls._from_weight(
            weight, has_bias, rank=rank, rel_error=rel_error, weight_budget=weight_budget, **options
        )
        layer = layer.to(torch.float64)
        if has_bias:
            assert layer.bias is not None
            with torch.no_grad():
                layer.bias.copy_(linear.bias.detach().to(torch.float64))
        return layer.to(device=linear.weight.device, dtype=linear.weight.dtype)

    @classmethod
    def rank_for_params(
        cls, in_features: int, out_features: int, params: int, *, bias: bool = True, **options: Any
    ) -> int:
        """The largest uniform rank with at most ``params`` parameters (at least 1), searched
        up to the format's ``max_rank`` (every format defines ``param_count`` and ``max_rank``
        as classmethods with its own keyword options)."""
        count = cls.param_count  # type: ignore[attr-defined]
        return largest_uniform_rank(
            lambda r: int(count(in_features, out_features, r, bias=bias, **options)),
            params,
            int(cls.max_rank(in_features, out_features, **options)),  # type: ignore[attr-defined]
        )

    @classmethod
    def _smallest_weight_count(
        cls, in_features: int, out_features: int, options: dict[str, Any]
    ) -> int:
        """Weight entries (bias excluded) of the rank-1 layer of this shape."""
        count: int = cls.param_count(in_features, out_features, 1, bias=False, **options)  # type: ignore[attr-defined]
        return count

    @classmethod
    @abstractmethod
    def _from_weight(
        cls: type[_T],
        weight: torch.Tensor,
        bias: bool,
        *,
        rank: Any,
        rel_error: float | None,
        weight_budget: int | None,
        **options: Any,
    ) -> _T:
        """Build the layer from ``weight: [out, in]`` (float64) with one of rank / rel_error /
        weight_budget (weight entries, bias excluded)."""

    @staticmethod
    def _pad_weight(
        weight: torch.Tensor, out_modes: Sequence[int], in_modes: Sequence[int]
    ) -> torch.Tensor:
        out_f, in_f = weight.shape
        return F.pad(weight, (0, math.prod(in_modes) - in_f, 0, math.prod(out_modes) - out_f))

    def _load_factors(self, tensors: Sequence[torch.Tensor]) -> None:
        """Copy ``tensors`` into the weight parameters (all parameters but the bias, in order)."""
        params = [p for name, p in self.named_parameters() if name != "bias"]
        with torch.no_grad():
            for p, t in zip(params, tensors, strict=True):
                p.data = t.detach().clone().reshape(p.shape)  # keep float64 until from_linear casts
