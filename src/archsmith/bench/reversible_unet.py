"""Two tables for ``archsmith bench reversible``: the 3D U-Net under a fixed activation budget,
and reconstruction error against depth.

:func:`unet_budget_rows` reproduces the claim of Pendse et al., "Memory Efficient 3D U-Net with
Reversible Mobile Inverted Bottlenecks for Brain Tumor Segmentation" (BrainLes 2020): under a
fixed memory budget the reversible network trains input volumes up to 3x larger, 25% deeper, or
with up to 2x the channels of its non-reversible twin. The budget is the **saved-activation
bytes** (:func:`archsmith.cost.measure`'s count, exact on every machine) of the plain network at
a reference configuration, batch 1. Along each axis, with the others at the reference, the
largest value whose saved bytes stay within it is found by doubling, then bisection:

- ``volume``: slices ``D`` of a ``D x S x S`` input (a multiple of the U-Net's fold, so voxels
  grow linearly and finely; the ratio is in voxels);
- ``depth``: reversible MBConv couplings per resolution level (encoder and decoder stages);
- ``channels``: the base width ``w`` of the levels ``(w, 2w, 4w)``.

A reversible stage keeps only its output, so the reversible network's saved bytes do not grow
with depth at all: its depth search stops at a cap and reports ``capped`` (the ratio is then a
lower bound).

:func:`reconstruction_rows` reports ``inverse(forward(x))`` against ``x`` in float32 for i-RevNet
(Jacobsen et al., ICLR 2018) and for the engine's reversible MBConv stack, at growing depth, in
eval mode after the BatchNorm statistics have been estimated (train-mode normalization uses the
batch's statistics, which the inverse cannot know).

Both return rows with a ``"table"`` key; ``archsmith bench reversible`` appends them to its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsmith.bench.registry import BenchContext
from archsmith.cost import measure, saved_activation_bytes
from archsmith.reversible.blocks import rev_mbconv
from archsmith.reversible.engine import ReversibleSequence
from archsmith.reversible.irevnet import IRevNet
from archsmith.reversible.unet3d import RevUNet3D

__all__ = [
    "BUDGET_TABLE",
    "PAPER_RATIOS",
    "RECONSTRUCTION_TABLE",
    "BudgetGrid",
    "ReconstructionGrid",
    "largest_fitting",
    "reconstruction_rows",
    "unet_budget_rows",
]

BUDGET_TABLE = "3D U-Net under a fixed activation budget"
RECONSTRUCTION_TABLE = "inverse(forward(x)) reconstruction error vs depth (float32)"

#: Pendse et al.'s ratios, reversible over plain, under one memory budget
PAPER_RATIOS = {"volume": 3.0, "depth": 1.25, "channels": 2.0}

_IN_CHANNELS = 1
_CLASSES = 3


@dataclass(frozen=True)
class BudgetGrid:
    """The reference U-Net and the search limits of :func:`unet_budget_rows`.

    Attributes:
        side: ``S`` of the ``D x S x S`` input (divisible by ``2 ** (levels - 1)``).
        slices: reference ``D`` (same divisibility).
        width: reference base width (levels ``width * 2**i``).
        levels: resolution levels.
        blocks: reference couplings per level.
        max_blocks: depth search cap.
        max_width: width search cap.
        max_slices: volume search cap.
        peak_rss: also run the full :func:`~archsmith.cost.measure` at each result for the
            peak resident memory of a training step. Off by default: it costs seconds to
            minutes per point, and after the search's probes the process's high-water mark and
            the allocator's retained memory dominate it (the step's rise reads 0), so it says
            little about the network; the saved bytes are the measurement.
    """

    side: int = 32
    slices: int = 32
    width: int = 8
    levels: int = 3
    blocks: int = 2
    max_blocks: int = 64
    max_width: int = 256
    max_slices: int = 1024
    peak_rss: bool = False


QUICK_BUDGET = BudgetGrid(side=16, slices=16, max_blocks=32, max_width=128)


def largest_fitting(fits: Callable[[int], bool], start: int, cap: int) -> tuple[int, bool]:
    """The largest ``n`` in ``[start, cap]`` with ``fits(n)``, for ``fits`` monotone (true up to
    some point, false after), by doubling from ``start`` and then bisection.

    Returns ``(n, capped)``: ``capped`` when ``cap`` itself fits (the true limit may be higher);
    ``(start - 1, False)`` when even ``start`` does not fit.
    """
    if not fits(start):
        return start - 1, False
    lo, hi = start, None  # fits(lo); not fits(hi)
    while hi is None:
        nxt = min(2 * lo, cap)
        if nxt == lo:
            return lo, True
        if fits(nxt):
            lo = nxt
        else:
            hi = nxt
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo, False


@dataclass(frozen=True)
class _Config:
    slices: int
    width: int
    blocks: int


class _UNetProbe:
    """Saved-activation bytes of one training-step forward, memoized by configuration."""

    def __init__(self, grid: BudgetGrid) -> None:
        self.grid = grid
        self._memo: dict[tuple[bool, _Config], int] = {}

    def model(self, reversible: bool, cfg: _Config) -> RevUNet3D:
        channels = tuple(cfg.width * 2**i for i in range(self.grid.levels))
        torch.manual_seed(0)
        return RevUNet3D(_IN_CHANNELS, _CLASSES, channels, blocks=cfg.blocks, reversible=reversible)

    def batch(self, cfg: _Config) -> tuple[Tensor, Tensor]:
        shape = (cfg.slices, self.grid.side, self.grid.side)
        return torch.randn(1, _IN_CHANNELS, *shape), torch.randint(0, _CLASSES, (1, *shape))

    def saved_bytes(self, reversible: bool, cfg: _Config) -> int:
        key = (reversible, cfg)
        if key not in self._memo:
            model = self.model(reversible, cfg)
            x, y = self.batch(cfg)
            # the forward-only count inside cost.measure: the same number, without measure's
            # FLOP counting, backward and resident-memory passes (20-50x faster per probe)
            self._memo[key] = saved_activation_bytes(model, x, target=y, loss_fn=F.cross_entropy)
        return self._memo[key]


def _search(
    probe: _UNetProbe, reversible: bool, axis: str, ref: _Config, budget: int
) -> tuple[_Config, bool]:
    grid = probe.grid
    fold = 2 ** (grid.levels - 1)

    def config(n: int) -> _Config:
        if axis == "volume":
            return _Config(n * fold, ref.width, ref.blocks)
        if axis == "depth":
            return _Config(ref.slices, ref.width, n)
        return _Config(ref.slices, n, ref.blocks)

    start, cap = {
        "volume": (ref.slices // fold, grid.max_slices // fold),
        "depth": (ref.blocks, grid.max_blocks),
        "channels": (ref.width, grid.max_width),
    }[axis]
    n, capped = largest_fitting(
        lambda k: probe.saved_bytes(reversible, config(k)) <= budget, start, cap
    )
    return config(max(n, 1)), capped


def _size(axis: str, cfg: _Config, side: int) -> int:
    if axis == "volume":
        return cfg.slices * side * side
    return cfg.blocks if axis == "depth" else cfg.width


def unet_budget_rows(ctx: BenchContext, grid: BudgetGrid | None = None) -> list[dict[str, Any]]:
    """Plain vs reversible 3D U-Net: the largest volume, depth and width within the budget.

    Args:
        ctx: the benchmark context (``ctx.quick`` picks :data:`QUICK_BUDGET`).
        grid: override the reference and limits (tests use tiny ones).

    Returns:
        Per axis (``volume``, ``depth``, ``channels``) one row per ``impl`` (``plain``,
        ``archsmith``): ``value`` (slices, couplings per level, base width), ``size`` (voxels,
        couplings, width), ``saved_bytes`` there, ``budget_bytes``, ``ratio`` (size over
        plain's), ``paper_ratio``, ``capped``; ``peak_rss_bytes`` / ``step_rss_bytes`` of a
        training step there when the grid asks for them (else None).
    """
    if grid is None:
        grid = QUICK_BUDGET if ctx.quick else BudgetGrid()
    torch.set_num_threads(1)  # the machine is shared; ratios, not speed, are measured here
    probe = _UNetProbe(grid)
    ref = _Config(grid.slices, grid.width, grid.blocks)
    budget = probe.saved_bytes(False, ref)
    rows: list[dict[str, Any]] = []
    for axis in ("volume", "depth", "channels"):
        found = {rev: _search(probe, rev, axis, ref, budget) for rev in (False, True)}
        plain_size = _size(axis, found[False][0], grid.side)
        for rev in (False, True):
            cfg, capped = found[rev]
            size = _size(axis, cfg, grid.side)
            row: dict[str, Any] = {
                "table": BUDGET_TABLE,
                "model": "unet3d",
                "impl": "archsmith" if rev else "plain",
                "axis": axis,
                "value": {"volume": cfg.slices, "depth": cfg.blocks, "channels": cfg.width}[axis],
                "volume": f"{cfg.slices}x{grid.side}x{grid.side}",
                "channels": "/".join(str(cfg.width * 2**i) for i in range(grid.levels)),
                "blocks": cfg.blocks,
                "size": size,
                "saved_bytes": probe.saved_bytes(rev, cfg),
                "budget_bytes": budget,
                "ratio": size / plain_size,
                "paper_ratio": PAPER_RATIOS[axis] if rev else 1.0,
                "capped": capped,
                "peak_rss_bytes": None,
                "step_rss_bytes": None,
                "note": "",
            }
            if capped:
                row["note"] = f"fits at the search cap: ratio is a lower bound ({axis} flat)"
            if grid.peak_rss:
                x, y = probe.batch(cfg)
                cost = measure(
                    probe.model(rev, cfg), x, target=y, loss_fn=F.cross_entropy, timing=False
                )
                row["peak_rss_bytes"] = cost.peak_rss_bytes
                row["step_rss_bytes"] = cost.step_rss_bytes
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# reconstruction


@dataclass(frozen=True)
class ReconstructionGrid:
    """Sizes of :func:`reconstruction_rows`.

    Attributes:
        depths: i-RevNet blocks (each coupling is two of them, so even) and, for the engine's
            MBConv stack, couplings.
        batch: examples per batch.
        image: ``(C, H, W)`` of i-RevNet's input (``H``, ``W`` divisible by 4: two stages).
        channels: i-RevNet width after injective padding; the MBConv stack's width.
        side: the MBConv stack's ``H = W``.
    """

    depths: tuple[int, ...] = (4, 8, 16, 32)
    batch: int = 8
    image: tuple[int, int, int] = (3, 16, 16)
    channels: int = 16
    side: int = 16


QUICK_RECONSTRUCTION = ReconstructionGrid(depths=(4, 16))


def _warm_statistics(model: nn.Module, make: Callable[[], Tensor], passes: int = 4) -> None:
    """Estimate BatchNorm running statistics (cumulative average over ``passes`` batches), then
    switch to eval mode: the network as it is inverted after training."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        for _ in range(passes):
            model(make())
    model.eval()


def _errors(x: Tensor, x_rec: Tensor, y: Tensor) -> dict[str, float]:
    diff = (x_rec - x).double()
    return {
        "max_abs_err": float(diff.abs().max()),
        "rel_err": float(diff.norm() / x.double().norm()),
        "output_max_abs": float(y.abs().max()),
    }


def _irevnet_row(grid: ReconstructionGrid, depth: int) -> dict[str, Any]:
    couplings = max(1, depth // 2)
    blocks = (couplings - couplings // 2, couplings // 2) if couplings > 1 else (1,)
    torch.manual_seed(depth)
    model = IRevNet(grid.image, 10, grid.channels, blocks)
    _warm_statistics(model, lambda: torch.randn(grid.batch, *grid.image))
    x = torch.randn(grid.batch, *grid.image)
    with torch.no_grad():
        y = model.features(x)
        x_rec = model.inverse(y)
    return {
        "model": "irevnet",
        "depth": 2 * sum(blocks),
        "couplings": sum(blocks),
        **_errors(x, x_rec, y),
        "note": f"stages {list(blocks)}, input {list(grid.image)}",
    }


def _engine_row(grid: ReconstructionGrid, depth: int) -> dict[str, Any]:
    torch.manual_seed(depth)
    seq = ReversibleSequence([rev_mbconv(grid.channels) for _ in range(depth)])
    shape = (grid.batch, grid.channels, grid.side, grid.side)
    _warm_statistics(seq, lambda: torch.randn(shape))
    x = torch.randn(shape)
    with torch.no_grad():
        y = seq(x)
        x_rec = seq.inverse(y)
    return {
        "model": "rev_mbconv",
        "depth": depth,
        "couplings": depth,
        **_errors(x, x_rec, y),
        "note": f"ReversibleSequence.inverse, x {list(shape)}",
    }


def reconstruction_rows(
    ctx: BenchContext, grid: ReconstructionGrid | None = None
) -> list[dict[str, Any]]:
    """``inverse(forward(x))`` against ``x`` in float32 as depth grows.

    Args:
        ctx: the benchmark context (``ctx.quick`` picks :data:`QUICK_RECONSTRUCTION`).
        grid: override the sizes (tests use tiny ones).

    Returns:
        One row per model (``irevnet``: the whole invertible trunk, ``depth`` in i-RevNet blocks;
        ``rev_mbconv``: the engine's stack, ``depth`` in couplings) and depth: ``max_abs_err``,
        ``rel_err`` (``||x' - x|| / ||x||``), ``output_max_abs`` (the features' size, which the
        rounding error scales with). The issue asks ``rel_err <= 1e-5`` for i-RevNet.
    """
    if grid is None:
        grid = QUICK_RECONSTRUCTION if ctx.quick else ReconstructionGrid()
    torch.set_num_threads(1)
    rows = []
    for depth in grid.depths:
        for make in (_irevnet_row, _engine_row):
            row = make(grid, depth)
            rows.append(
                {"table": RECONSTRUCTION_TABLE, "impl": "archsmith", "dtype": "float32", **row}
            )
    return rows
