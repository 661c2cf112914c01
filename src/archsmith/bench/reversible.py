"""``archsmith bench reversible``: training memory and speed of reversible stacks.

Two stacks of additive couplings (Gomez et al., "The Reversible Residual Network", NeurIPS 2017)
at fixed width and batch, at depths 8, 16, 32, 64 (``--quick``: 8 and 32):

- ``mbconv`` — reversible inverted bottlenecks (:func:`~archsmith.reversible.rev_mbconv`; Pendse
  et al., BrainLes 2020) on ``x: [8, 32, 16, 16]``;
- ``transformer`` — reversible Transformer layers (:func:`~archsmith.reversible.
  rev_transformer_layer`: attention as F, MLP as G) on two streams ``x: [8, 64, 2 * 64]``.

Every implementation (``impl``) runs the **same F and G modules** (same weights), so their
gradients can be compared:

- ``plain`` — the couplings under ordinary autograd (the engine's twin, ``reversible=False``);
- ``checkpoint`` — ``torch.utils.checkpoint`` around every coupling (non-reentrant);
- ``memcnn`` — ``memcnn.InvertibleModuleWrapper(memcnn.AdditiveCoupling(F, G))`` per coupling;
- ``revlib`` — ``revlib.ReversibleSequential(F1, G1, F2, G2, ...)``;
- ``archsmith`` — :class:`~archsmith.reversible.ReversibleSequence` (default options);
- ``archsmith_pareprop`` — the same with ``overlap=True`` (PaReprop, Zhao et al. 2023:
  block ``i - 1`` is reconstructed on a second thread while block ``i``'s gradients are
  computed).

Columns: ``saved_bytes`` — the storages autograd keeps for backward, from
:func:`archsmith.cost.measure` (memcnn and revlib keep their tensors on the autograd context,
out of the saved-tensor hooks' sight: their count is not comparable, see ``note``);
``peak_rss_bytes`` / ``step_rss_bytes`` — the process's resident peak during one training step
and its rise over the resident size before it, after ``malloc_trim`` (glibc keeps freed heap
resident, which would hide every step's peak behind the largest one before it);
``step_ms`` — median of interleaved training steps (``zero_grad``, forward, ``sum(y * w)``,
backward), wall clock as the harness times it, and ``step_ratio`` = ``step_ms`` over plain's at
the same depth; ``step_cpu_ms`` / ``cpu_ratio`` — the same with the process's CPU time (every
thread), which other jobs on a shared machine disturb far less than the wall clock;
``recompute_floor`` — 1 + plain's forward without grad (timed in the same rounds) over plain's
step: the least any backward that recomputes every block once can cost, before its own
overhead (the same for every row of a stack and depth); ``heap`` — ``"steady"`` where glibc
was told to keep freed memory for the run (:func:`archsmith.measure.heap.steady_heap`), so that
the times are computation and not the allocator re-faulting memory it handed back;
``max_grad_rel_err`` — the largest ``||g - g_plain|| / ||g_plain||`` over the input's and every
parameter's gradient, float32; ``grad_rel_err_f64`` — the same in float64 for archsmith's rows.
In float32 every reversible implementation shows the same error, which grows with depth: it is
the rounding of reconstructing each block's input from its output (``x1 = y1 - F(x2)`` loses
digits as the streams grow), not the engine's, whose float64 error stays near 1e-14.

The input requires grad (a stack inside a network). Norm scales and shifts are drawn at random
(as after training): at their initial (1, 0) a BatchNorm followed by ReLU, a depthwise
convolution and another BatchNorm has a scale gradient that is pure rounding noise, which would
make every reversible implementation look 1e-2 wrong in float32. Dropout is 0 (memcnn does not
replay the random state by default).

The U-Net budget table and the reconstruction-error table come from
:mod:`archsmith.bench.reversible_unet` and are appended when it is available.

Targets (the issue): archsmith's saved bytes at depth 64 over depth 8 <= 1.1 (plain grows
~8x); step time <= 1.35x plain and no slower than memcnn or revlib.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from rich.console import Console
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from archsmith.bench import reversible_unet
from archsmith.bench.anchors import AnchorMissing, anchor_missing_row, require_anchor
from archsmith.bench.registry import BenchContext, register_bench
from archsmith.cost import measure, peak_rss
from archsmith.measure.heap import steady_heap
from archsmith.measure.timing import TimingResult, time_interleaved_clocks
from archsmith.reversible import (
    AdditiveCoupling,
    ReversibleSequence,
    rev_mbconv,
    rev_transformer_layer,
)

__all__ = ["FULL_GRID", "IMPLS", "QUICK_GRID", "Grid", "StackSize", "stack_rows"]

IMPLS = ("plain", "checkpoint", "memcnn", "revlib", "archsmith", "archsmith_pareprop")

_HOOK_BLIND = (
    "keeps its tensors on the autograd context, invisible to saved-tensor hooks: "
    "saved_bytes not comparable (see peak RSS)"
)


@dataclass(frozen=True)
class StackSize:
    """Width and batch of one stack.

    Attributes:
        batch: examples per batch.
        channels: MBConv channels (both halves), or Transformer width of one stream.
        side: MBConv ``H = W``; Transformer tokens ``T``.
        expand_ratio: MBConv expansion; Transformer MLP ratio.
        heads: Transformer heads.
    """

    batch: int
    channels: int
    side: int
    expand_ratio: float = 4.0
    heads: int = 4


@dataclass(frozen=True)
class Grid:
    """What :func:`stack_rows` runs."""

    depths: tuple[int, ...]
    models: dict[str, StackSize] = field(
        default_factory=lambda: {
            "mbconv": StackSize(batch=8, channels=32, side=16),
            "transformer": StackSize(batch=8, channels=64, side=64),
        }
    )
    impls: tuple[str, ...] = IMPLS


FULL_GRID = Grid(depths=(8, 16, 32, 64))
QUICK_GRID = Grid(depths=(8, 32))


# ----------------------------------------------------------------------------------------------
# the stacks and their implementations


def _couplings(model: str, size: StackSize, depth: int) -> tuple[list[AdditiveCoupling], Tensor]:
    """``depth`` couplings of ``model`` with random norm affine parameters, and an input."""
    torch.manual_seed(0)
    if model == "mbconv":
        couplings = [
            rev_mbconv(size.channels, expand_ratio=size.expand_ratio) for _ in range(depth)
        ]
        x = torch.randn(size.batch, size.channels, size.side, size.side)
    elif model == "transformer":
        couplings = [
            rev_transformer_layer(size.channels, size.heads, size.expand_ratio)
            for _ in range(depth)
        ]
        x = torch.randn(size.batch, size.side, 2 * size.channels)
    else:
        raise ValueError(f"unknown stack {model!r}")
    with torch.no_grad():
        for m in nn.ModuleList(couplings).modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm | nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return couplings, x


class _Checkpointed(nn.Module):
    """Each coupling under non-reentrant ``torch.utils.checkpoint``."""

    def __init__(self, couplings: list[AdditiveCoupling]) -> None:
        super().__init__()
        self.couplings = nn.ModuleList(couplings)

    def forward(self, x: Tensor) -> Tensor:
        for c in self.couplings:
            x = checkpoint(c, x, use_reentrant=False)
        return x


class _Memcnn(nn.Module):
    """memcnn's wrapper around its own additive coupling of the same F and G."""

    def __init__(self, memcnn: Any, couplings: list[AdditiveCoupling]) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            *(
                memcnn.InvertibleModuleWrapper(
                    memcnn.AdditiveCoupling(c.f, c.g, split_dim=c.dim),
                    keep_input=False,
                    keep_input_inverse=False,
                )
                for c in couplings
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        # memcnn frees each block's input storage in forward (restoring it in backward): the
        # caller's tensor must not be one of them
        return self.blocks(x.clone())


def _revlib(revlib: Any, couplings: list[AdditiveCoupling]) -> nn.Module:
    # revlib alternates the streams: (x1, x2) -> (x2, x1 + F(x2)) -> (y1, x2 + G(y1)), so
    # F, G, F, G, ... computes RevNet's coupling on the same halves
    modules = [m for c in couplings for m in (c.f, c.g)]
    module: nn.Module = revlib.ReversibleSequential(*modules, split_dim=couplings[0].dim)
    return module


def _build(impl: str, couplings: list[AdditiveCoupling]) -> nn.Module:
    if impl == "plain":
        return ReversibleSequence(couplings, reversible=False)
    if impl == "checkpoint":
        return _Checkpointed(couplings)
    if impl == "memcnn":
        return _Memcnn(require_anchor("memcnn"), couplings)
    if impl == "revlib":
        return _revlib(require_anchor("revlib"), couplings)
    if impl == "archsmith":
        return ReversibleSequence(couplings)
    if impl == "archsmith_pareprop":
        return ReversibleSequence(couplings, overlap=True)
    raise ValueError(f"unknown implementation {impl!r}")


# ----------------------------------------------------------------------------------------------
# measurements


def _step(module: nn.Module, x: Tensor, weight: Tensor) -> Callable[[], None]:
    """One training step of ``module``: fresh grads, forward, ``sum(y * weight)``, backward."""

    def step() -> None:
        module.zero_grad(set_to_none=True)
        leaf = x.detach().requires_grad_()
        (module(leaf) * weight).sum().backward()

    return step


_FORWARD = "forward without grad"


def _forward_without_grad(module: nn.Module, x: Tensor) -> Callable[[], None]:
    """``module``'s forward under ``torch.no_grad``: the least a reversible backward, which
    recomputes every block once, adds to a plain step."""

    def forward() -> None:
        with torch.no_grad():
            module(x)

    return forward


def _gradients(
    module: nn.Module, x: Tensor, weight: Tensor, params: Sequence[Tensor]
) -> list[Tensor]:
    module.zero_grad(set_to_none=True)
    leaf = x.detach().requires_grad_()
    (module(leaf) * weight).sum().backward()
    assert leaf.grad is not None
    out = [leaf.grad]
    out += [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    module.zero_grad(set_to_none=True)
    return out


def _step_rss(step: Callable[[], None]) -> tuple[int, int]:
    """``(peak, rise)``: the resident high-water mark during one ``step`` and its rise over the
    resident size just before (:func:`archsmith.cost.peak_rss`, which trims freed heap first)."""
    peak, before, _ = peak_rss(step)
    return peak, max(0, peak - before)


def _max_rel_err(got: list[Tensor], want: list[Tensor]) -> float:
    return max(
        float((g.double() - w.double()).norm() / w.double().norm().clamp_min(1e-30))
        for g, w in zip(got, want, strict=True)
    )


def _loss(y: Tensor, weight: Tensor) -> Tensor:
    return (y * weight).sum()


def _f64_error(impl: str, couplings: list[AdditiveCoupling], x: Tensor, weight: Tensor) -> float:
    """``max_grad_rel_err`` of ``impl`` in float64 (copies of the couplings): what is left
    without float32 rounding, i.e. the engine's own error."""
    doubled = [copy.deepcopy(c).double() for c in couplings]
    params = [p for c in doubled for p in c.parameters()]
    x64, w64 = x.double(), weight.double()
    reference = _gradients(_build("plain", doubled), x64, w64, params)
    return _max_rel_err(_gradients(_build(impl, doubled), x64, w64, params), reference)


def _group_rows(
    ctx: BenchContext, model: str, size: StackSize, depth: int, impls: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The rows of one stack at one depth: every implementation on the same couplings."""
    couplings, x = _couplings(model, size, depth)
    weight = torch.randn_like(x)
    params = [p for c in couplings for p in c.parameters()]
    rows: list[dict[str, Any]] = []
    modules: dict[str, nn.Module] = {}
    for impl in impls:
        try:
            modules[impl] = _build(impl, couplings)
        except AnchorMissing as missing:
            row = anchor_missing_row(missing.package, model=model, impl=impl, depth=depth)
            rows.append({**row, "note": f"{missing.package} {missing.reason}"})
    steps = {impl: _step(m, x, weight) for impl, m in modules.items()}
    if "plain" in modules:
        # what any recompute-based backward adds at least: one forward without grad
        steps[_FORWARD] = _forward_without_grad(modules["plain"], x)
    # wall time, and CPU time of the whole process (every thread) around the same calls: the
    # latter is robust to other jobs on a shared machine, and it shows what an overlapped
    # backward costs in total
    clocks = {"wall": time.perf_counter, "cpu": time.process_time}
    timed = time_interleaved_clocks(steps, clocks, repeats=ctx.repeats, warmup=ctx.warmup)
    wall, cpu = timed["wall"], timed["cpu"]
    floor = None
    if _FORWARD in wall:
        floor = 1.0 + wall.pop(_FORWARD).median_ms / wall["plain"].median_ms
        cpu.pop(_FORWARD)
    reference = _gradients(modules["plain"], x, weight, params) if "plain" in modules else None
    for impl, module in modules.items():
        cost = measure(
            module, x.detach().requires_grad_(), target=weight, loss_fn=_loss, timing=False
        )
        peak, rise = _step_rss(_step(module, x, weight))
        err = err64 = None
        note = "reference" if impl == "plain" else ""
        if reference is not None and impl != "plain":
            err = _max_rel_err(_gradients(module, x, weight, params), reference)
        if impl.startswith("archsmith"):
            err64 = _f64_error(impl, couplings, x, weight)
        if impl in ("memcnn", "revlib"):
            note = f"{impl} {_HOOK_BLIND}"
        if impl == "archsmith_pareprop":
            note = "wall time gains only where a second core is idle; step_cpu_ms counts both"
        rows.append(
            {
                "model": model,
                "impl": impl,
                "depth": depth,
                "saved_bytes": cost.saved_activation_bytes,
                "peak_rss_bytes": peak,
                "step_rss_bytes": rise,
                "step_ms": wall[impl].median_ms,
                "step_ratio": _ratio(wall, impl),
                "step_cpu_ms": cpu[impl].median_ms,
                "cpu_ratio": _ratio(cpu, impl),
                "recompute_floor": floor,
                "max_grad_rel_err": err,
                "grad_rel_err_f64": err64,
                "note": note,
            }
        )
    return rows


def _ratio(timings: dict[str, TimingResult], impl: str) -> float | None:
    if "plain" not in timings:
        return None
    return timings[impl].median_ms / timings["plain"].median_ms


def stack_rows(ctx: BenchContext, grid: Grid | None = None) -> list[dict[str, Any]]:
    """The main table: one row per stack, depth and implementation.

    Args:
        ctx: the benchmark context (``ctx.quick`` picks :data:`QUICK_GRID`; ``repeats`` and
            ``warmup`` drive the interleaved timing).
        grid: override the depths, sizes and implementations (tests use tiny ones).
    """
    if grid is None:
        grid = QUICK_GRID if ctx.quick else FULL_GRID
    console = Console(stderr=True, highlight=False)
    rows: list[dict[str, Any]] = []
    for model, size in grid.models.items():
        for depth in grid.depths:
            group = _group_rows(ctx, model, size, depth, grid.impls)
            rows += group
            summary = ", ".join(
                f"{r['impl']} {r['step_ratio']:.2f}x"
                for r in group
                if r.get("step_ratio") is not None
            )
            floor = group[0].get("recompute_floor")
            if floor is not None:
                summary += f" (recompute floor {floor:.2f}x)"
            console.print(f"reversible: {model} depth {depth}: step time vs plain: {summary}")
    return rows


def _extra_tables(ctx: BenchContext) -> list[dict[str, Any]]:
    """The U-Net budget and reconstruction tables of :mod:`archsmith.bench.reversible_unet`;
    a table whose function is missing there is skipped with a printed note."""
    console = Console(stderr=True, highlight=False)
    rows: list[dict[str, Any]] = []
    for name in ("unet_budget_rows", "reconstruction_rows"):
        fn = getattr(reversible_unet, name, None)
        if fn is None:
            console.print(f"reversible: {name} not in archsmith.bench.reversible_unet, skipped")
            continue
        rows += fn(ctx)
    return rows


@register_bench(
    "reversible",
    "reversible MBConv / Transformer stacks: saved bytes, RSS, step time, grad error vs "
    "plain, checkpoint, memcnn, revlib; 3D U-Net budget; reconstruction error",
)
def reversible(ctx: BenchContext) -> list[dict[str, Any]]:
    torch.set_num_threads(1)  # a shared machine: ratios in one process are the result
    # without it, what a step costs depends on the order of the allocator's past frees (see
    # archsmith.measure.heap), and the reversible rows, which free and rebuild a graph per block,
    # pay it most
    heap = "steady" if steady_heap() else "allocator default"
    rows = [{**row, "heap": heap} for row in stack_rows(ctx)]
    return rows + _extra_tables(ctx)
