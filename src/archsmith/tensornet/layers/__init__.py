"""Tensor-network linear layers, registered as ``linear_layer="tt" | "tt_fast" | "btt" | "tucker" | "cp"``.

Every layer maps ``[..., in_features] -> [..., out_features]``, is built as
``Cls(in_features, out_features, bias=True, *, rank=...)``, converts a dense layer with
``Cls.from_linear(linear, rank=... | rel_error=... | params=...)``, reconstructs its weight with
``dense_weight()`` and counts ``num_params``. :func:`rank_for_params` picks a rank for a budget.
"""

from __future__ import annotations

from typing import Any

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.tensornet.layers.base import (
    DEFAULT_COMPRESSION,
    TensorLinear,
    dense_init_std,
    factor_std,
)
from archsmith.tensornet.layers.btt import BTTLinear
from archsmith.tensornet.layers.cp import CPLinear
from archsmith.tensornet.layers.tt import TTLinear
from archsmith.tensornet.layers.tucker import TuckerLinear

__all__ = [
    "DEFAULT_COMPRESSION",
    "FORMATS",
    "BTTLinear",
    "CPLinear",
    "TTLinear",
    "TensorLinear",
    "TuckerLinear",
    "dense_init_std",
    "factor_std",
    "rank_for_params",
]

#: format name (as registered for ``linear_layer``) -> layer class; "mpo" is an alias of "tt"
FORMATS: dict[str, type[TensorLinear]] = {
    "tt": TTLinear,
    "mpo": TTLinear,
    "btt": BTTLinear,
    "tucker": TuckerLinear,
    "cp": CPLinear,
}


def rank_for_params(
    fmt: str, in_features: int, out_features: int, params: int, *, bias: bool = True, **options: Any
) -> int:
    """The largest uniform rank of format ``fmt`` ("tt", "tt_fast", "mpo", "btt", "tucker",
    "cp") whose ``(in_features, out_features)`` layer has at most ``params`` parameters (bias
    included when ``bias``); 1 when even rank 1 does not fit. ``options`` are the format's mode
    options."""
    if fmt == "tt_fast":  # the registered linear layer: TTLinear in its fast layout
        fmt, options = "tt", {**options, "layout": "fast"}
    if fmt not in FORMATS:
        raise ArchsmithError(f"unknown tensor-network format {fmt!r}{did_you_mean(fmt, FORMATS)}")
    cls: Any = FORMATS[fmt]
    return int(cls.rank_for_params(in_features, out_features, params, bias=bias, **options))
