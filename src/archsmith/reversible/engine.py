"""The reversible engine: training memory flat in depth.

:class:`ReversibleSequence` runs a stack of :class:`~archsmith.reversible.couplings.Coupling`
blocks. With ``reversible=True`` (and grad enabled) its forward runs inside one autograd
Function that keeps **only the final output** (through ``ctx.save_for_backward``, so the cost
model's saved-tensor hooks see it); backward walks the blocks from the last: each one
reconstructs its input from its output, recomputes its local graph with grad, backpropagates
through it and frees it (Gomez et al., "The Reversible Residual Network: Backpropagation Without
Storing Activations", NeurIPS 2017, algorithm 1).

What backward takes care of:

- **random state**: the generators' state before every sub-function call is recorded in forward
  and replayed in backward (CPU, and the input's CUDA device), so dropout draws the same mask;
- **running statistics**: BatchNorm modules recompute with batch statistics but without
  updating their running averages (``track_running_stats`` switched off for the recompute);
  any other module in training mode that holds buffers recomputes on copies of them and gets
  the originals back. The statistics are therefore updated once per step, as in the plain
  network;
- **shared parameters** get the sum of their gradients; frozen parameters and inputs that do not
  require grad get none (and the first block skips its input gradient);
- **autocast** state is replayed; ``torch.no_grad`` inference skips the Function entirely.

Speed: a stack of like multi-split couplings (same split dimension and sizes, stock
``forward`` and ``reverse_step``: every built-in block) runs on separate contiguous parts, in
place: forward adds each update into its part, backward subtracts it again and accumulates the
gradients into the parts of one gradient buffer, so no block allocates, splits or concatenates,
and every function sees a contiguous input. Each function is evaluated twice per step (forward,
and once with grad in backward), against once for plain autograd; ``overlap=True`` computes
block ``i``'s gradients on a worker thread while block ``i - 1`` is recomputed (PaReprop).
Other stacks go block by block through :meth:`Coupling.reverse_step`, which works in place on
the engine's own buffers from the second block on.

The gradients equal plain autograd's up to the error of reconstructing each input from its
output (about 1e-15 relative in float64; in float32 it grows with depth and with the size of
the streams, as ``x1 = y1 - F(x2)`` cancels digits).

The plain-autograd twin is the same module with ``reversible=False`` (same parameters, same
random draws): set the attribute, or :func:`set_reversible` on a whole model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any, cast

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from archsmith.errors import ArchsmithError
from archsmith.reversible._plan import BlockPlan, plan_blocks
from archsmith.reversible._rng import RngTape
from archsmith.reversible.couplings import Coupling, MultiSplitCoupling, global_module_hooks

__all__ = ["ReversibleSequence", "set_reversible"]


class ReversibleSequence(nn.Module):
    """A sequence of couplings trained with activations reconstructed from outputs.

    Args:
        couplings: the blocks, each a :class:`~archsmith.reversible.couplings.Coupling`.
        reversible: True (default): memory-saving backward; False: plain autograd (the twin).
        preserve_rng_state: record and replay the random state of every sub-function call so
            stochastic layers recompute identically. Default True; False saves a little time
            when no block draws random numbers.
        overlap: PaReprop (Zhao et al., "PaReprop: Fast Parallelized Reversible
            Backpropagation", 2023): while block ``i``'s gradients are computed on a worker
            thread, block ``i - 1`` is reconstructed and recomputed on the calling one (two
            blocks' local graphs alive at a time: memory still flat in depth). It pays only
            where a second core is idle (CPU; ``torch.set_num_threads`` applies to both
            threads) and applies to stacks of like multi-split couplings; others, and runs under
            a ``TorchDispatchMode`` (FLOP counting, which sees one thread), go sequentially.
            Default False.

    Shapes: ``x: [B, C, ...] -> y`` as the couplings map it (usually the same shape).
    """

    def __init__(
        self,
        couplings: Sequence[Coupling],
        *,
        reversible: bool = True,
        preserve_rng_state: bool = True,
        overlap: bool = False,
    ) -> None:
        super().__init__()
        couplings = list(couplings)
        if not couplings:
            raise ArchsmithError("a reversible sequence needs at least one coupling")
        for i, c in enumerate(couplings):
            if not isinstance(c, Coupling):
                raise ArchsmithError(
                    f"reversible sequence block {i} is a {type(c).__name__}, not a Coupling: "
                    "only couplings can be inverted (wrap it in AdditiveCoupling, say)"
                )
        self.couplings = nn.ModuleList(couplings)
        self.reversible = reversible
        self.preserve_rng_state = preserve_rng_state
        self.overlap = overlap

    def __len__(self) -> int:
        return len(self.couplings)

    def blocks(self) -> list[Coupling]:
        """The couplings, in order."""
        return [cast(Coupling, c) for c in self.couplings]

    def forward(self, x: Tensor) -> Tensor:
        """``x: [B, C, ...] -> y``; reversible only where a backward can follow."""
        if self.reversible and torch.is_grad_enabled():
            plans, params = plan_blocks(self, self.blocks())
            if x.requires_grad or params:
                out: Tensor = _ReversibleFunction.apply(self, plans, x, *params)
                return out
        for c in self.couplings:
            x = c(x)
        return x

    def inverse(self, y: Tensor) -> Tensor:
        """The input that gives ``y``: the couplings' inverses from the last one.

        Exact (to rounding) for deterministic blocks; dropout in training mode draws new masks,
        so invert in eval mode.
        """
        for c in reversed(self.blocks()):
            y = c.inverse(y)
        return y

    def extra_repr(self) -> str:
        return (
            f"reversible={self.reversible}, preserve_rng_state={self.preserve_rng_state}, "
            f"overlap={self.overlap}"
        )


def set_reversible(module: nn.Module, reversible: bool) -> nn.Module:
    """Switch every :class:`ReversibleSequence` inside ``module`` to ``reversible`` (False: the
    plain-autograd twin on the same weights) and return ``module``."""
    for m in module.modules():
        if isinstance(m, ReversibleSequence):
            m.reversible = reversible
    return module


def _cuda_devices(x: Tensor) -> list[torch.device]:
    return [x.device] if x.is_cuda else []


@contextmanager
def _statistics_frozen(plan: BlockPlan) -> Iterator[None]:
    """Recompute a block without changing its buffers (see the module docstring).

    Other buffered modules recompute on copies of their buffers, and get the originals back
    afterwards: the recomputed graph may save a buffer (BatchNorm's backward saves its running
    statistics), so writing the old values back into it in place would invalidate that graph
    before its backward has run, which with ``overlap=True`` happens on the worker thread after
    this context has closed.
    """
    for bn in plan.batchnorms:
        # a plain attribute: skip nn.Module.__setattr__'s checks (hot path)
        bn.__dict__["track_running_stats"] = False
    originals = [
        (m, name, buf) for m in plan.buffered for name, buf in m._buffers.items() if buf is not None
    ]
    with torch.no_grad():
        for module, name, buf in originals:
            module._buffers[name] = buf.clone()
    try:
        yield
    finally:
        for bn in plan.batchnorms:
            bn.__dict__["track_running_stats"] = True
        for module, name, buf in originals:
            module._buffers[name] = buf  # the module may also have re-assigned the copy


def _owned(y: Tensor, dy: Tensor, foreign: set[int]) -> bool:
    """``y`` and ``dy`` are distinct engine buffers, free to overwrite."""
    a, b = y.untyped_storage().data_ptr(), dy.untyped_storage().data_ptr()
    return a != b and a not in foreign and b not in foreign


def _parts_layout(couplings: list[Coupling], x: Tensor) -> tuple[int, list[int]] | None:
    """``(dim, sizes)`` when every block is a stock multi-split coupling splitting ``x`` alike,
    so the stack can run on separate contiguous parts; None otherwise.

    A subclass that overrides ``forward`` or ``reverse_step``, or a coupling with forward hooks
    of its own (which the parts path would bypass), takes the general path.
    """
    dims: set[int] = set()
    sizes: set[tuple[int, ...]] = set()
    for c in couplings:
        if not (
            isinstance(c, MultiSplitCoupling)
            and type(c).forward is MultiSplitCoupling.forward
            and type(c).reverse_step is MultiSplitCoupling.reverse_step
            and not c._forward_hooks
            and not c._forward_pre_hooks
        ):
            return None
        dims.add(c.dim % x.dim())
        sizes.add(c.sizes(x))
        if len(dims) > 1 or len(sizes) > 1:
            return None
    if global_module_hooks():
        return None
    return dims.pop(), list(sizes.pop())


def _contiguous_parts(t: Tensor, layout: tuple[int, list[int]]) -> list[Tensor]:
    """Own contiguous copies of the parts of ``t`` (strided slices, or expanded gradients)."""
    dim, sizes = layout
    return [p.clone(memory_format=torch.contiguous_format) for p in t.split(sizes, dim)]


class _ReversibleFunction(torch.autograd.Function):
    """Forward keeps only the output; backward reconstructs block by block."""

    @staticmethod
    def forward(
        ctx: Any, seq: ReversibleSequence, plans: list[BlockPlan], x: Tensor, *params: Tensor
    ) -> Tensor:
        devices = _cuda_devices(x)
        # Inside a Function's forward grad is off, yet views of an input that requires grad
        # (the couplings' splits) still claim to require it without a grad_fn; module hooks that
        # look for one (the module tracker of FlopCounterMode, used by archsmith.cost.measure)
        # then fail. Nothing here is differentiated, so the blocks see a detached input.
        x = x.detach()
        blocks = seq.blocks()
        layout = _parts_layout(blocks, x)
        tapes: list[RngTape | None] = []
        parts = _contiguous_parts(x, layout) if layout is not None else []
        for c in blocks:
            tape = RngTape(devices) if seq.preserve_rng_state else None
            with c.rng_tape(tape):
                if layout is not None:
                    cast(MultiSplitCoupling, c).forward_parts(parts)
                else:
                    x = c(x)
            tapes.append(tape)
        if layout is not None:
            x = torch.cat(parts, layout[0])
        device_type = x.device.type
        ctx.seq = seq
        ctx.plans = plans
        ctx.layout = layout
        ctx.tapes = tapes
        ctx.devices = devices
        ctx.param_index = {id(p): i for i, p in enumerate(params)}
        ctx.autocast = (
            device_type,
            torch.is_autocast_enabled(device_type),
            torch.get_autocast_dtype(device_type),
        )
        ctx.save_for_backward(x)
        return x

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, dy: Tensor) -> tuple[Tensor | None, ...]:
        (y,) = ctx.saved_tensors
        couplings: list[Coupling] = ctx.seq.blocks()
        index: dict[int, int] = ctx.param_index
        grads: list[Tensor | None] = [None] * len(index)
        need_x = bool(ctx.needs_input_grad[2])
        plans: list[BlockPlan] = ctx.plans
        device_type, autocast, dtype = ctx.autocast
        tapes: list[RngTape | None] = ctx.tapes
        layout: tuple[int, list[int]] | None = ctx.layout

        def accumulate(pairs: list[tuple[Tensor, Tensor]]) -> None:
            for p, g in pairs:
                k = index.get(id(p))
                if k is None:  # frozen after the forward
                    continue
                acc = grads[k]
                grads[k] = g if acc is None else acc + g

        with ExitStack() as stack:
            if any(t is not None for t in tapes):
                stack.enter_context(torch.random.fork_rng(devices=ctx.devices))
            if autocast:
                stack.enter_context(torch.autocast(device_type, dtype=dtype))
            if layout is not None and ctx.seq.overlap and not _dispatch_mode_active():
                dx = _backward_overlapped(
                    couplings, plans, tapes, y, dy, layout, need_x, accumulate
                )
            elif layout is not None:
                dx = _backward_parts(couplings, plans, tapes, y, dy, layout, need_x, accumulate)
            else:
                dx = _backward_blocks(couplings, plans, tapes, y, dy, need_x, accumulate)
        return (None, None, dx, *grads)


class _Replaying:
    """``with``: one block's reverse step, its random state replayed and its buffers kept.

    A class rather than an ``ExitStack``: it is entered once per block on every step, and most
    blocks need only the tape bound.
    """

    __slots__ = ("binding", "frozen")

    def __init__(self, c: Coupling, plan: BlockPlan, tape: RngTape | None) -> None:
        if tape is not None:
            tape.replay = True
        self.binding = c.rng_tape(tape)
        stateful = plan.batchnorms or plan.buffered
        self.frozen = _statistics_frozen(plan) if stateful else None

    def __enter__(self) -> None:
        self.binding.__enter__()
        if self.frozen is not None:
            self.frozen.__enter__()

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.frozen is not None:
                self.frozen.__exit__(*exc)
        finally:
            self.binding.__exit__(*exc)


def _backward_parts(
    couplings: list[Coupling],
    plans: list[BlockPlan],
    tapes: list[RngTape | None],
    y: Tensor,
    dy: Tensor,
    layout: tuple[int, list[int]],
    need_x: bool,
    accumulate: Callable[[list[tuple[Tensor, Tensor]]], None],
) -> Tensor | None:
    """Multi-split couplings on contiguous parts, reconstructed and differentiated in place."""
    parts = _contiguous_parts(y, layout)
    grads = _contiguous_parts(dy, layout)
    for i in reversed(range(len(couplings))):
        c = cast(MultiSplitCoupling, couplings[i])
        with _Replaying(c, plans[i], tapes[i]):
            pairs = c.reverse_parts(
                parts, grads, need_input_grad=need_x or i > 0, fn_params=plans[i].fn_params
            )
        accumulate(pairs)
    return torch.cat(grads, layout[0]) if need_x else None


_WORKER: list[ThreadPoolExecutor] = []


def _worker() -> ThreadPoolExecutor:
    """The one thread that computes gradients for :func:`_backward_overlapped` (made once)."""
    if not _WORKER:
        _WORKER.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="archsmith-pareprop"))
    return _WORKER[0]


def _dispatch_mode_active() -> bool:
    # dispatch modes are thread-local: one on this thread would not see the worker's ops
    return bool(torch._C._len_torch_dispatch_stack())


def _backward_overlapped(
    couplings: list[Coupling],
    plans: list[BlockPlan],
    tapes: list[RngTape | None],
    y: Tensor,
    dy: Tensor,
    layout: tuple[int, list[int]],
    need_x: bool,
    accumulate: Callable[[list[tuple[Tensor, Tensor]]], None],
) -> Tensor | None:
    """:func:`_backward_parts` with reconstruction and differentiation on two threads.

    This thread reconstructs block ``i`` (new tensors: block ``i + 1``'s graph may still hold
    the old ones) and then waits for the worker to finish block ``i + 1`` before handing it
    block ``i``, so at most two blocks' graphs are alive. The gradient buffers are the
    worker's alone; the random state and the frozen statistics only matter to this thread.
    """
    parts = _contiguous_parts(y, layout)
    grads = _contiguous_parts(dy, layout)
    worker = _worker()
    running: Future[list[tuple[Tensor, Tensor]]] | None = None
    for i in reversed(range(len(couplings))):
        c = cast(MultiSplitCoupling, couplings[i])
        with _Replaying(c, plans[i], tapes[i]):
            parts, pending = c.recompute_parts(parts, need_input_grad=need_x or i > 0)
        if running is not None:
            accumulate(running.result())
        running = worker.submit(c.backprop_parts, pending, grads, plans[i].fn_params)
    if running is not None:
        accumulate(running.result())
    return torch.cat(grads, layout[0]) if need_x else None


def _backward_blocks(
    couplings: list[Coupling],
    plans: list[BlockPlan],
    tapes: list[RngTape | None],
    y: Tensor,
    dy: Tensor,
    need_x: bool,
    accumulate: Callable[[list[tuple[Tensor, Tensor]]], None],
) -> Tensor | None:
    """Any couplings, one :meth:`~Coupling.reverse_step` each."""
    # the saved output and the incoming gradient belong to the caller; every buffer a block
    # returns belongs to the engine, and the next block may overwrite it
    foreign = {y.untyped_storage().data_ptr(), dy.untyped_storage().data_ptr()}
    for i in reversed(range(len(couplings))):
        c = couplings[i]
        need = need_x or i > 0
        with _Replaying(c, plans[i], tapes[i]):
            if c.inplace_reverse_step:
                inplace = _owned(y, dy, foreign)
                step = cast(Any, c).reverse_step(y, dy, need_input_grad=need, inplace=inplace)
            else:
                step = c.reverse_step(y, dy, need_input_grad=need)
        accumulate(step.param_grads)
        y = step.x  # the previous block's output
        if step.dx is not None:
            dy = step.dx
    return dy if need_x else None
