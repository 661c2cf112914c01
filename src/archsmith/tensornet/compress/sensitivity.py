"""How much each layer's factoring hurts: the curves :mod:`.allocate` spends the budget on.

For a dense layer ``y = x W^T + b`` and a factored weight ``W_r`` at rank ``r``, the error its
output takes on calibration inputs ``X: [N, in]`` is

    e(r) = ||X (W - W_r)^T||_F^2 / ||X W^T||_F^2 = tr(D G D^T) / tr(W G W^T),   D = W - W_r,

with ``G = X^T X: [in, in]`` gathered once per layer by a forward hook — so each candidate rank
costs one factorisation and one ``[out, in] x [in, in]`` product, no forward pass. Layers differ
in how much an error in their output reaches the model's output (a residual branch, a layer
followed by a norm, the last layer), so the ``sensitivity`` allocation weighs each layer's curve
by an end-to-end probe: with only that layer factored (at the rank a uniform allocation would
give it), the relative squared error of the model's outputs on the calibration batches
``E = sum ||f_c - f||^2 / sum ||f||^2`` divided by that layer's ``e`` at the probe rank. The
weighted curves are in units of output error and add up across layers to first order (so the
estimate is good for moderate errors and optimistic for a layer pushed to a tiny rank: at
extreme targets, 90% and beyond on a small MLP, the allocation can starve a layer).

Ranks are measured at :data:`MEASURED_POINTS` points per layer (errors in between interpolated
in log space). A format with several variants per layer (the ``mpo`` output split) keeps the
variant with the smallest error at the probe rank; a whitening format factors with the layer's
input Gram matrix, so its errors are those of the activation-aware factorisation.

Allocations (``--allocation``): ``uniform`` (same share per layer), ``weight`` (``G = I``:
plain weight error, as in data-free truncation), ``activation`` (``G`` from calibration inputs),
``sensitivity`` (``activation`` weighted by the end-to-end probe; the default).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from archsmith.tensornet.compress.allocate import RankCurve
from archsmith.tensornet.compress.formats import LayerFormat, Variant
from archsmith.tensornet.compress.surgery import linear_params, set_submodule

__all__ = [
    "ALLOCATIONS",
    "input_grams",
    "output_error",
    "probe_function",
    "rank_curves",
    "thin_ranks",
]

ALLOCATIONS = ("sensitivity", "activation", "weight", "uniform")
#: Candidate ranks per layer: enough for a fine budget fill.
MAX_POINTS = 64
#: Ranks per layer that are factored and measured; errors in between are interpolated.
MEASURED_POINTS = 8


@torch.no_grad()
def input_grams(
    model: nn.Module, layers: dict[str, nn.Linear], run: Callable[[], Any]
) -> dict[str, torch.Tensor]:
    """``{name: X^T X}`` (float64 ``[in, in]``) of each layer's inputs while ``run()`` runs the
    model on the calibration batches."""
    grams = {
        name: torch.zeros(m.in_features, m.in_features, dtype=torch.float64)
        for name, m in layers.items()
    }

    def hook(name: str) -> Callable[..., None]:
        def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
            grams[name] += (x.T @ x).double()  # float32 product, float64 running sum

        return record

    handles = [layers[name].register_forward_pre_hook(hook(name)) for name in layers]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return grams


def output_error(
    weight: torch.Tensor, approx: torch.Tensor, gram: torch.Tensor | None = None
) -> float:
    """``tr(D G D^T) / tr(W G W^T)`` with ``D = weight - approx``; weights ``[out, in]``,
    ``gram: [in, in]`` (``None``: the identity, i.e. the relative squared Frobenius error)."""
    w = weight.detach().double()
    d = w - approx.detach().double()
    if gram is None:
        return float(d.pow(2).sum() / w.pow(2).sum().clamp_min(1e-300))
    g = gram.float()  # float32 products (fast), float64 sums
    num = ((d.float() @ g).double() * d).sum()
    den = ((w.float() @ g).double() * w).sum().clamp_min(1e-300)
    return float(num / den)


def thin_ranks(
    ranks: Sequence[int], params: Sequence[int], max_points: int = MAX_POINTS
) -> list[int]:
    """At most ``max_points`` of ``ranks``, spread evenly in parameters; first and last kept."""
    if len(ranks) <= max_points:
        return list(ranks)
    lo, hi = params[0], params[-1]
    targets = [lo + (hi - lo) * k / (max_points - 1) for k in range(max_points)]
    picked: list[int] = []
    j = 0
    for t in targets:
        while j < len(params) - 1 and params[j] < t:
            j += 1
        if not picked or ranks[j] != picked[-1]:
            picked.append(ranks[j])
    return picked


def rank_curves(
    layers: dict[str, nn.Linear],
    fmt: LayerFormat,
    *,
    allocation: str,
    keep: float,
    grams: dict[str, torch.Tensor] | None = None,
    probe: Callable[[str, nn.Module], float] | None = None,
    on_layer: Callable[[str], None] | None = None,
) -> list[RankCurve]:
    """One :class:`RankCurve` per layer (see the module docstring for the error used).

    When the format offers several variants for a layer (the ``mpo`` output split), the one with
    the smallest error at the probe rank is kept. Whitening formats factor with the layer's input
    Gram matrix whenever it is given (all allocations but ``weight`` and ``uniform``).

    Args:
        keep: the share of parameters a uniform allocation keeps (sets the probe rank).
        grams: input Gram matrices (``activation`` and ``sensitivity``).
        probe: ``probe(name, factored_layer)`` — the end-to-end output error with only that layer
            replaced (``sensitivity``).
        on_layer: called with each layer's name when it is done (progress).
    """
    curves: list[RankCurve] = []
    for name, layer in layers.items():
        bias, dense = layer.bias is not None, linear_params(layer)
        shape = (layer.in_features, layer.out_features, bias)
        gram = grams[name] if allocation not in ("weight", "uniform") and grams else None

        variants = fmt.variants(layer.in_features, layer.out_features)
        if allocation == "uniform":  # needs no errors: skip the factorisations
            ranks, params, _ = _grid(fmt, shape, dense, keep, variants[0])
            curves.append(
                RankCurve(
                    name, dense, tuple(ranks), tuple(params), (0.0,) * len(ranks), variants[0]
                )
            )
            continue
        factor = fmt.factorizer(layer, gram)
        best: tuple[float, Variant, nn.Module] | None = None
        for variant in variants:
            ranks, _, at = _grid(fmt, shape, dense, keep, variant)
            factored = factor(ranks[at], variant)
            err = output_error(layer.weight, _dense(factored), gram)
            if best is None or err < best[0]:
                best = (err, variant, factored)
        assert best is not None
        variant = best[1]
        ranks, params, at = _grid(fmt, shape, dense, keep, variant)
        measured = sorted(set(thin_ranks(ranks, params, MEASURED_POINTS)) - {ranks[at]})
        known = {ranks[at]: best[0]}
        for r in measured:
            known[r] = output_error(layer.weight, _dense(factor(r, variant)), gram)
        errors = _interpolate(ranks, params, known)
        if allocation == "sensitivity" and probe is not None:
            scale = probe(name, best[2]) / max(errors[at], 1e-12)
            errors = [e * scale for e in errors]
        curves.append(RankCurve(name, dense, tuple(ranks), tuple(params), tuple(errors), variant))
        if on_layer is not None:
            on_layer(name)
    return curves


def _grid(
    fmt: LayerFormat, shape: tuple[int, int, bool], dense: int, keep: float, variant: Variant
) -> tuple[list[int], list[int], int]:
    """Candidate ranks, their parameters, and the index of the rank a uniform allocation would
    give the layer (where the probe measures)."""
    every = fmt.ranks(*shape, variant) or [1]
    ranks = thin_ranks(every, [fmt.num_params(*shape, r, variant) for r in every])
    params = [fmt.num_params(*shape, r, variant) for r in ranks]
    at = max([i for i, p in enumerate(params) if p <= keep * dense], default=0)
    return ranks, params, at


def _interpolate(ranks: list[int], params: list[int], known: dict[int, float]) -> list[float]:
    """Errors at every rank: measured where known, else linear in ``log(error)`` over params
    between the nearest measured ranks (truncation errors decay about exponentially)."""
    xs = [p for r, p in zip(ranks, params, strict=True) if r in known]
    ys = [math.log(max(known[r], 1e-30)) for r in ranks if r in known]
    if len(xs) == 1:
        return [known.get(r, math.exp(ys[0])) for r in ranks]
    return [
        known[r] if r in known else math.exp(float(np.interp(p, xs, ys)))
        for r, p in zip(ranks, params, strict=True)
    ]


def _dense(layer: nn.Module) -> torch.Tensor:
    fn: Any = layer.dense_weight
    out: torch.Tensor = fn()
    return out


def probe_function(
    model: nn.Module,
    layers: dict[str, nn.Linear],
    outputs: Callable[[nn.Module], Iterable[torch.Tensor]],
    reference: Sequence[torch.Tensor],
) -> Callable[[str, nn.Module], float]:
    """A ``probe`` for :func:`rank_curves`: swaps one layer into ``model``, computes
    ``sum ||f_c - f||^2 / sum ||f||^2`` over the calibration outputs, and swaps it back."""

    @torch.no_grad()
    def run(name: str, factored: nn.Module) -> float:
        set_submodule(model, name, factored)
        try:
            num = den = 0.0
            for out, ref in zip(outputs(model), reference, strict=True):
                num += float((out.double() - ref.double()).pow(2).sum())
                den += float(ref.double().pow(2).sum())
        finally:
            set_submodule(model, name, layers[name])
        return num / max(den, 1e-300)

    return run
