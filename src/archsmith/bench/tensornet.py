"""``archsmith bench tensornet``: tensor-network linear layers against tensorly-torch and dense.

Square layers ``size x size`` (256 ... 4096; ``--quick``: 256 and 1024) applied to a batch of
:data:`BATCH` = 256 tokens (one 256-token sequence, or 8 x 32: a realistic transformer
micro-batch), float32, bias on, one thread as set by the caller. Implementations (``impl``):

- ``tt`` — :class:`~archsmith.tensornet.layers.TTLinear` (TT-matrix / MPO, uniform bond rank)
  in both mode layouts (``layout``): ``"balanced"`` (the default: 3 cores of near-equal modes)
  and ``"fast"`` (two cores ``in = (2, N/2)``, ``out = (N/2, 2)``, the cheapest contraction:
  :func:`~archsmith.tensornet.layers.tt.fast_modes`);
- ``btt`` — :class:`~archsmith.tensornet.layers.BTTLinear` (block tensor-train of Qiu et al.,
  "Compute Better Spent", ICML 2024);
- ``tltorch_blocktt``, ``tltorch_tucker``, ``tltorch_cp`` — tensorly-torch's
  ``FactorizedLinear`` with that factorization (its "blocktt" is the TT-matrix format), on the
  same tensorized modes as the ``tt`` row they are matched with (``btt`` rows: the balanced
  ones);
- ``dense`` — :class:`torch.nn.Linear`.

Grid: for each compression level ``c`` (:data:`LEVELS`; dense weights over layer weights), ``tt``
(each layout) takes the largest uniform rank within ``size^2 / c`` weights and ``btt`` likewise (at least
rank 1; a BTT rank reached by two levels is timed once). Every archsmith row gets three
tensorly-torch rows **at equal parameter count**: ranks chosen so that their count is the
nearest to the archsmith row's (``match`` names that row, ``match_params`` its count; ``params``
is always the row's own count, bias included). tensorly-torch can reconstruct the weight or
contract the factors; for blocktt and tucker both are probed (3 rounds) and the faster is timed
(``tl_impl``); CP is timed factorized only, since its reconstruction (a Khatri-Rao product of
2d factors) is an order of magnitude slower.

A candidate whose first forward+backward takes over :data:`SKIP_FACTOR` times dense's (and
over :data:`SKIP_MIN_S`) is not timed: its row says so in ``note`` and has no times (tensorly-torch's CP
at large sizes, whose factorized contraction scales with its large rank). From
:data:`BIG_SIZE` on, the rounds are capped at :data:`BIG_ROUNDS` (repeats, warm-up), so the full
grid runs in minutes on one thread; up to :data:`SMALL_SIZE` they are multiplied by
:data:`SMALL_ROUNDS_FACTOR` (calls of a millisecond or two are the noisiest on a shared machine,
and cheap to repeat).

All candidates of one size run interleaved in one process (:func:`time_interleaved`);
``fwd_ms``: forward under ``torch.no_grad``; ``fwd_bwd_ms``: forward, ``sum``, backward to the
input and every parameter. Ratios: ``vs_dense`` = dense fwd_bwd / this row's fwd_bwd (archsmith
rows; target > 1 at >= 8x compression for sizes >= 1024), next to ``flops_vs_dense``, the
forward FLOPs of the route the layer takes over dense's (BTT: ``1 / compression``; fast TT:
``2 / compression``; balanced TT: at least about 1 from 8x down to a few hundred x, since its
factorized contraction costs more than ``B N M`` there and the fallback rebuilds the weight) and ``tl_over_archsmith`` = this
tensorly-torch row's fwd_bwd / its matched archsmith row's (target >= 1).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch
from torch import nn

from archsmith.bench.anchors import AnchorMissing, anchor_missing_row, require_anchor
from archsmith.bench.registry import BenchContext, register_bench
from archsmith.measure.timing import time_interleaved
from archsmith.tensornet.core import tt_params
from archsmith.tensornet.layers import BTTLinear, TTLinear
from archsmith.tensornet.layers.tt import LAYOUTS, prefers_dense, route_flops

__all__ = ["BATCH", "FULL_SIZES", "LEVELS", "QUICK_SIZES", "tensornet_rows"]

BATCH = 256
FULL_SIZES = (256, 512, 1024, 2048, 4096)
QUICK_SIZES = (256, 1024)
#: compression levels (quick, full)
LEVELS = {True: (8, 32), False: (8, 32, 128)}
TL_FACTORIZATIONS = ("blocktt", "tucker", "cp")
PROBE_ROUNDS = 3
SKIP_FACTOR = 10.0
SKIP_MIN_S = 1.0
BIG_SIZE = 2048
BIG_ROUNDS = (5, 1)
SMALL_SIZE = 512
SMALL_ROUNDS_FACTOR = 4


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- tensorly-torch at a parameter count ------------------------------------------------------


def _tl_count(fac: str, in_modes: tuple[int, ...], out_modes: tuple[int, ...], rank: Any) -> int:
    """Weight entries of tensorly-torch's ``fac`` at ``rank`` (as its ``new`` allocates them)."""
    shape = (*out_modes, *in_modes)
    if fac == "blocktt":
        sizes = [m * n for m, n in zip(out_modes, in_modes, strict=True)]
        return tt_params(sizes, [rank] * (len(sizes) - 1))
    if fac == "tucker":
        return math.prod(rank) + sum(s * r for s, r in zip(shape, rank, strict=True))
    return int(rank) * (sum(shape) + 1)  # CP: factors [s, R] and weights [R]


def _tucker_rank(shape: tuple[int, ...], fraction: float) -> tuple[int, ...]:
    import tensorly as tl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(int(r) for r in tl.tucker_tensor.validate_tucker_rank(shape, rank=fraction))


def tl_rank_for(
    fac: str, in_modes: tuple[int, ...], out_modes: tuple[int, ...], weights: int
) -> Any:
    """The tensorly-torch rank of ``fac`` whose weight count is nearest to ``weights``: a uniform
    bond rank (blocktt), a rank tuple from tensorly's parameter-fraction rule (tucker; the
    fraction is bisected), a CP rank."""
    shape = (*out_modes, *in_modes)
    if fac == "cp":
        return max(1, round(weights / (sum(shape) + 1)))
    cands: list[Any]
    if fac == "blocktt":
        cap = math.prod(m * n for m, n in zip(out_modes, in_modes, strict=True))
        cands = list(range(1, math.isqrt(cap) + 2))
    else:
        lo, hi = 1e-6, 1.0
        for _ in range(40):  # largest fraction whose tucker count stays <= weights
            mid = (lo + hi) / 2
            if _tl_count(fac, in_modes, out_modes, _tucker_rank(shape, mid)) <= weights:
                lo = mid
            else:
                hi = mid
        cands = [_tucker_rank(shape, lo), _tucker_rank(shape, hi)]
    return min(cands, key=lambda r: abs(_tl_count(fac, in_modes, out_modes, r) - weights))


# -- timing -----------------------------------------------------------------------------------


def _forward(layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            layer(x)

    return run


def _fwd_bwd(layer: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x).sum().backward()

    return run


def _tl_layer(
    tltorch: ModuleType,
    fac: str,
    tt: TTLinear,
    rank: Any,
    x: torch.Tensor,
    gen: torch.Generator,
) -> tuple[nn.Module, str]:
    """tensorly-torch's layer at ``rank`` with its faster implementation (see the docstring)."""
    impls = ("factorized",) if fac == "cp" else ("factorized", "reconstructed")
    layers = {}
    for impl in impls:
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        layers[impl] = tltorch.FactorizedLinear(
            tt.in_modes, tt.out_modes, factorization=fac, rank=rank, implementation=impl
        )
    if len(layers) == 1:
        return layers[impls[0]], impls[0]
    probe = time_interleaved(
        {k: _fwd_bwd(v, x) for k, v in layers.items()}, repeats=PROBE_ROUNDS, warmup=1
    )
    best = min(probe, key=lambda k: probe[k].median_ms)
    return layers[best], best


def _archsmith_layers(size: int, quick: bool) -> list[tuple[str, str | None, int, nn.Module]]:
    """``(impl, layout, rank, layer)`` of tt (each layout) and btt at every compression level
    (ranks deduplicated)."""
    out: list[tuple[str, str | None, int, nn.Module]] = []
    kinds: list[tuple[str, str | None, dict[str, Any]]] = [
        ("tt", layout, {"layout": layout}) for layout in LAYOUTS
    ] + [("btt", None, {})]
    for impl, layout, options in kinds:
        cls = TTLinear if impl == "tt" else BTTLinear
        seen: set[int] = set()
        for level in LEVELS[quick]:
            rank = cls.rank_for_params(size, size, size * size // level, bias=False, **options)
            if rank not in seen:
                seen.add(rank)
                out.append((impl, layout, rank, cls(size, size, rank=rank, **options)))
    return out


def _flops_vs_dense(layer: nn.Module, size: int) -> float:
    """Forward FLOPs of an archsmith layer over dense's ``2 B size^2``: for TT those of the
    route it takes (:func:`~archsmith.tensornet.layers.tt.route_flops`), for BTT ``2 B`` per
    weight (two batched matmuls touch every weight once per row)."""
    dense = 2 * BATCH * size * size
    if isinstance(layer, TTLinear):
        args = (BATCH, layer.in_modes, layer.out_modes, layer.ranks)
        factorized, rebuilt = route_flops(*args)
        return (rebuilt if prefers_dense(*args) else factorized) / dense
    assert isinstance(layer, BTTLinear)
    weights = layer.num_params - (layer.bias.numel() if layer.bias is not None else 0)
    return 2 * BATCH * weights / dense


def _too_slow(layers: dict[str, nn.Module], x: torch.Tensor) -> dict[str, str]:
    """``{key: note}`` of the layers whose first forward+backward exceeds :data:`SKIP_FACTOR`
    times dense's and :data:`SKIP_MIN_S` (dense itself is always timed)."""
    seconds = {}
    for key, layer in layers.items():
        start = time.perf_counter()
        _fwd_bwd(layer, x)()
        seconds[key] = time.perf_counter() - start
    limit = max(SKIP_MIN_S, SKIP_FACTOR * seconds["dense"])
    return {
        key: f"skipped: one fwd+bwd took {s:.1f} s (dense {seconds['dense']:.2f} s)"
        for key, s in seconds.items()
        if s > limit and key != "dense"
    }


def _size_rows(size: int, ctx: BenchContext, tltorch: ModuleType | None) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(size)
    x = torch.randn(BATCH, size, generator=gen).requires_grad_()
    torch.manual_seed(size)
    layers: dict[str, nn.Module] = {"dense": nn.Linear(size, size)}
    rows: dict[str, dict[str, Any]] = {"dense": {"impl": "dense", "size": size, "rank": None}}
    balanced = TTLinear(size, size, rank=1)  # the modes of the tensorly-torch layers for btt
    for impl, layout, rank, layer in _archsmith_layers(size, ctx.quick):
        key = f"{impl}{'/' + layout if layout else ''} r={rank}"
        layers[key] = layer
        rows[key] = {"impl": impl, "size": size, "rank": rank}
        if layout is not None:
            rows[key]["layout"] = layout
        ref_tt = layer if isinstance(layer, TTLinear) else balanced
        for fac in TL_FACTORIZATIONS:
            tl_row: dict[str, Any] = {"impl": f"tltorch_{fac}", "size": size}
            match = {"match": key, "match_params": _n_params(layer)}
            if tltorch is None:
                rows[f"{key}/{fac}"] = anchor_missing_row("tltorch", **tl_row, **match)
                continue
            weights = _n_params(layer) - size
            tl_rank = tl_rank_for(fac, ref_tt.in_modes, ref_tt.out_modes, weights)
            tl_layer, tl_impl = _tl_layer(tltorch, fac, ref_tt, tl_rank, x, gen)
            layers[f"{key}/{fac}"] = tl_layer
            rank_out = tl_rank if isinstance(tl_rank, int) else "x".join(map(str, tl_rank))
            rows[f"{key}/{fac}"] = {**tl_row, "rank": rank_out, **match, "tl_impl": tl_impl}
    for key, note in _too_slow(layers, x).items():
        del layers[key]
        rows[key]["note"] = note
    repeats, warmup = ctx.repeats, ctx.warmup
    if size >= BIG_SIZE:
        repeats, warmup = min(repeats, BIG_ROUNDS[0]), min(warmup, BIG_ROUNDS[1])
    elif size <= SMALL_SIZE:
        repeats *= SMALL_ROUNDS_FACTOR
    fwd = time_interleaved(
        {k: _forward(v, x) for k, v in layers.items()}, repeats=repeats, warmup=warmup
    )
    fb = time_interleaved(
        {k: _fwd_bwd(v, x) for k, v in layers.items()}, repeats=repeats, warmup=warmup
    )
    dense_ms = fb["dense"].median_ms
    out = []
    for key, row in rows.items():
        if key in layers:
            n = _n_params(layers[key])
            row.update(
                params=n,
                compression=size * size / max(1, n - size),
                fwd_ms=fwd[key].median_ms,
                fwd_bwd_ms=fb[key].median_ms,
            )
            if row["impl"] in ("tt", "btt"):
                row["vs_dense"] = dense_ms / fb[key].median_ms
                row["flops_vs_dense"] = _flops_vs_dense(layers[key], size)
            elif row.get("match") in fb:
                row["tl_over_archsmith"] = fb[key].median_ms / fb[row["match"]].median_ms
        out.append({"batch": BATCH, **row})
        if key in layers:
            out[-1]["rounds"] = repeats
    return out


def tensornet_rows(ctx: BenchContext) -> list[dict[str, Any]]:
    """Rows for every size of the grid; see the module docstring."""
    try:
        tltorch: ModuleType | None = require_anchor("tltorch")
    except AnchorMissing:
        tltorch = None
    rows: list[dict[str, Any]] = []
    for size in QUICK_SIZES if ctx.quick else FULL_SIZES:
        rows += _size_rows(size, ctx, tltorch)
    return rows


@register_bench(
    "tensornet", "TT / BTT linear layers vs tensorly-torch (blocktt, tucker, cp) and dense"
)
def tensornet(ctx: BenchContext) -> list[dict[str, Any]]:
    return tensornet_rows(ctx)
