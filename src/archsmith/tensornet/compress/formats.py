"""The layer formats ``archsmith compress --method`` can put in place of an ``nn.Linear``.

A :class:`LayerFormat` names a tensor-network layer class of :mod:`archsmith.tensornet.layers`,
the *variants* worth trying for one dense shape (constructor options such as the mode split),
and how to factor a dense layer at a rank.

- ``mpo`` — a two-core matrix product operator (TT-matrix, cores ``[r_{k-1}, m_k, n_k, r_k]``;
  CompactifAI's format, Tomut et al., 2024) whose input index sits whole in the last core:
  ``in_modes = (1, in)``, ``out_modes = (out / k, k)`` with the split ``k`` in :data:`MPO_SPLITS`
  chosen per layer by the error it leaves (``k = 1`` is the plain low-rank product). Keeping the
  input in one core makes the factorisation *activation-aware*: with the input Gram matrix
  ``G = X^T X = L L^T`` of calibration inputs, TT-SVD of ``W L`` followed by ``L^{-1}`` folded into
  the last core minimises the output error ``||(W - W_r) X^T||`` instead of the weight error
  (the whitening of SVD-LLM, Wang et al., 2024, carried over to the MPO). On all-MiniLM-L6-v2
  this leaves 5-10x less output error at half the parameters than a balanced TT-SVD of the
  weight (e.g. 0.025 vs 0.30 relative squared output error on a 384 x 384 query projection).
- ``tt`` — the classic TT-matrix of Novikov et al., "Tensorizing Neural Networks" (2015):
  :class:`~archsmith.tensornet.layers.TTLinear` with balanced modes (3 cores for 384 or 1536
  features), truncated TT-SVD of the weight.
- ``btt`` — the block tensor-train of Qiu et al., "Compute Better Spent" (2024).
- ``tucker`` — :class:`~archsmith.tensornet.layers.TuckerLinear` (truncated HOSVD of the weight
  viewed as ``[m_1, m_2, n_1, n_2]``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.tensornet.core import interleave_modes
from archsmith.tensornet.layers import FORMATS, TTLinear

__all__ = ["METHODS", "MPO_SPLITS", "LayerFormat", "Variant", "get_format", "variant_from_json"]

#: Constructor options of one layer, as sorted ``(name, value)`` pairs (hashable).
Variant = tuple[tuple[str, Any], ...]

#: Output-mode splits ``k`` (``out_modes = (out / k, k)``) the ``mpo`` format tries per layer.
MPO_SPLITS = (1, 2, 4)
#: Tikhonov damping of the input Gram matrix, relative to its mean diagonal: keeps the whitening
#: invertible when calibration inputs do not span every direction.
GRAM_DAMPING = 1e-3


def _variant(**options: Any) -> Variant:
    return tuple(sorted(options.items()))


def variant_from_json(options: dict[str, Any]) -> Variant:
    """A :data:`Variant` from its JSON form (lists become tuples)."""
    return tuple(
        sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in dict(options).items())
    )


@dataclass(frozen=True)
class LayerFormat:
    """One way to factor a dense layer.

    Attributes:
        method: the ``--method`` name.
        class_name: the layer class in :mod:`archsmith.tensornet.layers`.
        description: one line for ``--help`` and the report.
        whiten: activation-aware factorisation (input in the last core; see the module).
    """

    method: str
    class_name: str
    description: str
    whiten: bool = False

    @property
    def layer_class(self) -> type[nn.Module]:
        return _layer_class(self.class_name)

    def variants(self, in_features: int, out_features: int) -> list[Variant]:
        """The constructor options tried for a dense ``[out, in]`` layer (at least one)."""
        if not self.whiten:
            return [()]
        return [
            _variant(in_modes=(1, in_features), out_modes=(out_features // k, k))
            for k in MPO_SPLITS
            if out_features % k == 0 and out_features // k >= 1
        ]

    def build(
        self, in_features: int, out_features: int, bias: bool, rank: int, variant: Variant = ()
    ) -> nn.Module:
        """An untrained layer of this format (the loader fills in the saved weights)."""
        cls: Any = self.layer_class
        return cls(in_features, out_features, bias, rank=rank, **dict(variant))

    def factor(
        self,
        linear: nn.Linear,
        rank: int,
        variant: Variant = (),
        gram: torch.Tensor | None = None,
    ) -> nn.Module:
        """``linear`` factored at ``rank``; with ``gram`` (``[in, in]``, ``X^T X`` of its inputs)
        and a whitening format, the factorisation minimises the output error on those inputs."""
        return self.factorizer(linear, gram)(rank, variant)

    def factorizer(
        self, linear: nn.Linear, gram: torch.Tensor | None = None
    ) -> Callable[[int, Variant], nn.Module]:
        """``f(rank, variant)`` = :meth:`factor` of ``linear``, sharing the work that does not
        depend on the rank (the whitening and the SVDs) across calls."""
        make = self._factorizer(linear, gram)

        def factor(rank: int, variant: Variant) -> nn.Module:
            layer = make(rank, variant)
            _balance(layer)
            for p in layer.parameters():
                # decompositions leave strided views; a loaded model has contiguous tensors,
                # and only equal layouts give bit-identical outputs after save and load
                p.data = p.data.contiguous()
            return layer

        return factor

    def _factorizer(
        self, linear: nn.Linear, gram: torch.Tensor | None
    ) -> Callable[[int, Variant], nn.Module]:
        cls: Any = self.layer_class
        if self.whiten and gram is not None and float(gram.diagonal().sum()) > 0:
            whitened = _WhitenedMPO(linear, gram)
            return lambda rank, variant: whitened(rank, dict(variant))
        return lambda rank, variant: cls.from_linear(linear, rank=rank, **dict(variant))

    def num_params(
        self, in_features: int, out_features: int, bias: bool, rank: int, variant: Variant = ()
    ) -> int:
        return _num_params(self, in_features, out_features, bias, rank, variant)

    def ranks(
        self, in_features: int, out_features: int, bias: bool, variant: Variant = ()
    ) -> list[int]:
        """Every rank (ascending) whose layer stores fewer parameters than the dense one."""
        return list(_ranks(self, in_features, out_features, bias, variant))


def _balance(layer: nn.Module) -> None:
    """Give every weight factor the same Frobenius norm without changing the weight.

    The weight of every format here is multilinear in its factor tensors (TT cores, Tucker core
    and factors, BTT cores), so scaling factor ``i`` by ``c_i`` with ``prod c_i = 1`` leaves it
    unchanged. Decompositions put the whole scale in one factor (the singular values, and with
    whitening the activations' scale as well), leaving the others with tiny entries; Adam moves
    every entry by about the learning rate, so healing would change those factors by a large
    relative amount per step and wreck the model within a few steps.
    """
    factors = [p for name, p in layer.named_parameters() if name != "bias"]
    norms = [float(p.detach().double().norm()) for p in factors]
    if len(factors) < 2 or min(norms) <= 0:
        return
    target = math.exp(sum(math.log(n) for n in norms) / len(norms))
    with torch.no_grad():
        for p, n in zip(factors, norms, strict=True):
            p.mul_(target / n)


class _WhitenedMPO:
    """Activation-aware 2-core MPO factorisations of one dense layer at any rank and split.

    The Cholesky factor ``L`` of the damped Gram matrix and, per output split, the SVD of the
    whitened weight reshaped as ``[out / k, k in]`` (TT-SVD with two cores is one SVD) are
    computed once; every rank is then a truncation.
    """

    def __init__(self, linear: nn.Linear, gram: torch.Tensor) -> None:
        self.linear = linear
        w = linear.weight.detach().to("cpu", torch.float64)  # [out, in]
        g = gram.detach().to("cpu", torch.float64)
        eye = torch.eye(w.shape[1], dtype=g.dtype)
        self.chol = torch.linalg.cholesky(
            g + GRAM_DAMPING * float(g.diagonal().mean()) * eye
        )  # [in, in], lower
        self.whitened = w @ self.chol
        self._svd: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def __call__(self, rank: int, options: dict[str, Any]) -> nn.Module:
        out_f, in_f = self.whitened.shape
        in_m, out_m = tuple(options["in_modes"]), tuple(options["out_modes"])
        if len(in_m) != 2 or in_m[0] != 1:
            raise ArchsmithError(f"whitened MPO needs in_modes (1, in), got {in_m}")
        k = out_m[1]
        if k not in self._svd:  # [m_1, k in]: the one TT unfolding of a 2-core TT-matrix
            mat = interleave_modes(self.whitened, out_m, in_m)
            self._svd[k] = torch.linalg.svd(mat, full_matrices=False)
        u, s, vh = self._svd[k]
        r = max(1, min(rank, s.numel()))
        first = (u[:, :r] * s[:r]).reshape(1, out_m[0], 1, r)
        last = torch.linalg.solve_triangular(  # B L^{-1}: the input index is whole in core 2
            self.chol, vh[:r].reshape(r * k, in_f), upper=False, left=False
        ).reshape(r, k, in_f, 1)
        layer = TTLinear(
            in_f,
            out_f,
            self.linear.bias is not None,
            rank=r,
            in_modes=in_m,
            out_modes=out_m,
        ).to(torch.float64)
        with torch.no_grad():
            layer.cores[0].copy_(first)
            layer.cores[1].copy_(last)
            if self.linear.bias is not None:
                assert layer.bias is not None
                layer.bias.copy_(self.linear.bias.detach().double())
        weight = self.linear.weight
        return layer.to(device=weight.device, dtype=weight.dtype)


@functools.cache
def _layer_class(name: str) -> type[nn.Module]:
    classes = {cls.__name__: cls for cls in FORMATS.values()}
    if name not in classes:  # a manifest names the class: only the known layer classes load
        raise ArchsmithError(
            f"unknown tensor-network layer class {name!r}{did_you_mean(name, classes)}"
        )
    return classes[name]


@functools.cache
def _num_params(
    fmt: LayerFormat, in_features: int, out_features: int, bias: bool, rank: int, variant: Variant
) -> int:
    cls: Any = fmt.layer_class
    return int(cls.param_count(in_features, out_features, rank, bias=bias, **dict(variant)))


@functools.cache
def _ranks(
    fmt: LayerFormat, in_features: int, out_features: int, bias: bool, variant: Variant
) -> tuple[int, ...]:
    cls: Any = fmt.layer_class
    dense = in_features * out_features + (out_features if bias else 0)
    top = int(cls.max_rank(in_features, out_features, **dict(variant)))  # exact from here on
    return tuple(
        r
        for r in range(1, top + 1)
        if _num_params(fmt, in_features, out_features, bias, r, variant) < dense
    )


#: ``--method`` name -> format.
METHODS: dict[str, LayerFormat] = {
    "mpo": LayerFormat(
        "mpo",
        "TTLinear",
        "activation-aware 2-core MPO (CompactifAI's format; input modes in the last core, "
        "output split chosen per layer)",
        whiten=True,
    ),
    "tt": LayerFormat(
        "tt", "TTLinear", "TT-matrix with balanced modes (Novikov et al., 2015), TT-SVD"
    ),
    "btt": LayerFormat("btt", "BTTLinear", "block tensor-train (Qiu et al., 2024)"),
    "tucker": LayerFormat("tucker", "TuckerLinear", "Tucker (HOSVD) of the tensorized weight"),
}


def get_format(method: str) -> LayerFormat:
    """The format for ``--method``; an unknown name is an :class:`ArchsmithError`."""
    if method not in METHODS:
        raise ArchsmithError(
            f"unknown compression method {method!r}{did_you_mean(method, METHODS)}; "
            f"choose one of {', '.join(METHODS)}"
        )
    return METHODS[method]
