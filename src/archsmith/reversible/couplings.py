"""Couplings: invertible blocks built from arbitrary (non-invertible) functions.

A coupling splits its input along ``dim`` into parts and updates each part by a function of the
others, so that the input can be recomputed exactly from the output:

- :class:`AdditiveCoupling` — RevNet (Gomez et al., "The Reversible Residual Network:
  Backpropagation Without Storing Activations", NeurIPS 2017): ``x = (x1, x2)``,
  ``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)``; inverse ``x2 = y2 - G(y1)``, ``x1 = y1 - F(x2)``.
- :class:`MultiSplitCoupling` — the N-way generalisation of Zhao et al., "Memory-Efficient
  Differentiable Transformer Architecture Search" (Findings of ACL 2021): ``N`` parts, part
  ``i`` updated as ``y_i = x_i + f_i(y_1 .. y_{i-1}, x_{i+1} .. x_N)`` (the other parts,
  concatenated along ``dim`` in their order); the inverse undoes the updates from the last.
- :class:`AffineCoupling` — RealNVP / Glow (Dinh et al., ICLR 2017; Kingma & Dhariwal, NeurIPS
  2018): ``y1 = x1``, ``y2 = x2 * s(x1) + t(x1)``, with a scale that can never be zero.

Every coupling also implements :meth:`Coupling.reverse_step`, the unit of work of
:class:`~archsmith.reversible.engine.ReversibleSequence`'s backward: from the block's output and
its gradient, reconstruct the input, recompute the local graph and return the input's gradient
and the parameters' gradients. The built-in couplings evaluate each function exactly once there
(the evaluation that inverts the block is the one that is differentiated).

Writing a coupling: subclass :class:`Coupling`, implement ``forward`` and ``inverse``, and call
every sub-function through :meth:`Coupling.call` with a key of its own, so the engine can replay
its random state (dropout) in backward. The inherited :meth:`Coupling.reverse_step` then works
(it inverts, then recomputes forward: each function twice); override it to fuse the two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from archsmith.errors import ArchsmithError
from archsmith.reversible._rng import RngTape
from archsmith.reversible._walk import trainable_parameters

__all__ = [
    "AdditiveCoupling",
    "AffineCoupling",
    "Coupling",
    "MultiSplitCoupling",
    "PendingUpdate",
    "ReverseStep",
    "part_sizes",
]


class ReverseStep(NamedTuple):
    """What :meth:`Coupling.reverse_step` returns.

    Attributes:
        x: the reconstructed input (detached).
        dx: the gradient of the loss w.r.t. ``x`` (detached), or None when not asked for.
        param_grads: ``(parameter, gradient)`` pairs for this block's trainable parameters; a
            parameter may appear more than once (used twice): the engine sums them.
    """

    x: Tensor
    dx: Tensor | None
    param_grads: list[tuple[Tensor, Tensor]]


def part_sizes(channels: int, parts: int) -> tuple[int, ...]:
    """Split ``channels`` into ``parts`` sizes as equal as possible, the first ones larger.

    ``part_sizes(7, 2) == (4, 3)``: the sizes the couplings use when none are given (as
    :func:`torch.chunk` does for two parts), so builders know what each function maps between.
    """
    if parts < 1:
        raise ArchsmithError(f"a coupling needs at least one part, got {parts}")
    if channels < parts:
        raise ArchsmithError(
            f"cannot split {channels} channel(s) into {parts} non-empty parts "
            "(a coupling part would be empty)"
        )
    base, extra = divmod(channels, parts)
    return tuple(base + (1 if i < extra else 0) for i in range(parts))


def _through(leaf: Tensor) -> Tensor:
    """``leaf`` behind a view when module hooks are installed globally, so that no module
    receives the leaf itself.

    Tools that hook every module's inputs for backward (``FlopCounterMode``'s module tracker,
    used by :func:`archsmith.cost.measure`) ask the engine whether a leaf's accumulator will
    run, which ``torch.autograd.grad`` does not support; a view is an ordinary graph node.
    Without such hooks the view is skipped: it costs a graph node per function per step.
    """
    return leaf.view_as(leaf) if leaf.requires_grad and global_module_hooks() else leaf


def global_module_hooks() -> bool:
    """Forward (pre-)hooks registered for every module (``register_module_forward_hook``)."""
    hooks = torch.nn.modules.module
    return bool(hooks._global_forward_hooks or hooks._global_forward_pre_hooks)


class _TapeBinding:
    """``with``: ``block`` records or replays through ``tape``, then gets its previous tape back.

    A class rather than a generator-based context manager: the engine enters one per block in
    forward and in backward on every step.
    """

    __slots__ = ("block", "previous", "tape")

    def __init__(self, block: Coupling, tape: RngTape | None) -> None:
        self.block = block
        self.tape = tape
        self.previous: RngTape | None = None

    def __enter__(self) -> None:
        self.previous, self.block._rng_tape = self.block._rng_tape, self.tape

    def __exit__(self, *exc: object) -> None:
        self.block._rng_tape = self.previous


class Coupling(nn.Module):
    """An invertible block: ``forward(x) -> y`` and its exact algebraic inverse ``inverse(y)``.

    Args:
        dim: the dimension split into parts (1: channels of ``[B, C, *S]``; -1: features of
            ``[B, T, D]`` for Transformers).
    """

    #: :meth:`reverse_step` takes ``inplace=True`` (it may then overwrite ``y`` and ``dy``)
    inplace_reverse_step: bool = False

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim
        self._rng_tape: RngTape | None = None

    def forward(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def inverse(self, y: Tensor) -> Tensor:
        """``x`` such that ``forward(x) == y`` (exact up to floating-point rounding)."""
        raise NotImplementedError

    def call(self, key: int, fn: Callable[..., Tensor], *args: Tensor) -> Tensor:
        """``fn(*args)``, with the random state of call site ``key`` recorded or replayed when
        the engine runs this block (every sub-function call of one forward gets its own key)."""
        tape = self._rng_tape
        if tape is not None:
            tape.mark(key)
        return fn(*args)

    def rng_tape(self, tape: RngTape | None) -> AbstractContextManager[None]:
        """Run the block with ``tape`` recording or replaying its sub-functions' random state
        (``with block.rng_tape(tape): ...``)."""
        return _TapeBinding(self, tape)

    def reverse_step(self, y: Tensor, dy: Tensor, *, need_input_grad: bool = True) -> ReverseStep:
        """Reconstruct the input from ``y`` and backpropagate ``dy`` through this block.

        Args:
            y: the block's output ``[B, C, ...]`` (no grad).
            dy: the loss's gradient w.r.t. ``y``, same shape.
            need_input_grad: compute ``dx`` (False for a first block whose input needs none).

        Generic version: invert without grad, then recompute forward with grad (every function
        runs twice). Subclasses fuse the two.
        """
        with torch.no_grad():
            x = self.inverse(y)
        params = trainable_parameters(self)
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(need_input_grad)
            out = self(_through(leaf))
        inputs = ([leaf] if need_input_grad else []) + params
        if not inputs or not out.requires_grad:
            return ReverseStep(x.detach(), torch.zeros_like(x) if need_input_grad else None, [])
        grads = torch.autograd.grad(out, inputs, dy, allow_unused=True)
        dx = None
        if need_input_grad:
            dx = grads[0] if grads[0] is not None else torch.zeros_like(x)
            grads = grads[1:]
        pairs = [(p, g) for p, g in zip(params, grads, strict=True) if g is not None]
        return ReverseStep(x.detach(), dx, pairs)


class MultiSplitCoupling(Coupling):
    """N-way additive coupling (Zhao et al., Findings of ACL 2021).

    ``x: [B, C, ...]`` is split along ``dim`` into ``x_1 .. x_N`` (``N = len(fns)``); part ``i``
    becomes ``y_i = x_i + fns[i](o_i)`` where ``o_i`` concatenates the other parts in order,
    already-updated ones for ``j < i``: ``o_i = cat(y_1 .. y_{i-1}, x_{i+1} .. x_N)``. So
    ``fns[i]`` maps ``[B, C - c_i, ...] -> [B, c_i, ...]``.

    Args:
        fns: the N >= 2 update functions (any modules).
        dim: the split dimension. Default 1 (channels).
        splits: part sizes along ``dim`` (summing to the input's size); default
            :func:`part_sizes` (as equal as possible, the first ones larger).
    """

    inplace_reverse_step = True

    def __init__(
        self, fns: Sequence[nn.Module], dim: int = 1, splits: Sequence[int] | None = None
    ) -> None:
        super().__init__(dim)
        if len(fns) < 2:
            raise ArchsmithError(f"a multi-split coupling needs >= 2 functions, got {len(fns)}")
        for i, fn in enumerate(fns):
            if not isinstance(fn, nn.Module):
                raise ArchsmithError(
                    f"coupling function {i} must be an nn.Module, got {type(fn).__name__}"
                )
        if splits is not None:
            splits = tuple(int(s) for s in splits)
            if len(splits) != len(fns):
                raise ArchsmithError(
                    f"coupling splits {list(splits)} give {len(splits)} parts for {len(fns)} "
                    "functions"
                )
            if min(splits) < 1:
                raise ArchsmithError(f"coupling splits {list(splits)}: a part would be empty")
        self.fns = nn.ModuleList(fns)
        self.splits = splits

    def sizes(self, x: Tensor) -> tuple[int, ...]:
        """The part sizes along ``dim`` for input ``x``."""
        channels = x.shape[self.dim]
        if self.splits is None:
            return part_sizes(channels, len(self.fns))
        if sum(self.splits) != channels:
            raise ArchsmithError(
                f"coupling splits {list(self.splits)} sum to {sum(self.splits)}, but the input "
                f"has {channels} along dim {self.dim} (shape {list(x.shape)})"
            )
        return self.splits

    def _others(self, parts: list[Tensor], i: int) -> Tensor:
        rest = parts[:i] + parts[i + 1 :]
        # a part is a strided slice (channels of [B, C, ...] with B > 1, features of [B, T, D]);
        # one copy here spares the function's layers their own (LayerNorm copies a strided
        # input in forward and again in backward, convolutions reorder it)
        return rest[0].contiguous() if len(rest) == 1 else torch.cat(rest, self.dim)

    def _update(self, i: int, parts: list[Tensor]) -> Tensor:
        """``fns[i]`` of the other parts, checked against part ``i``'s shape."""
        h = self.call(i, self.fns[i], self._others(parts, i))
        if h.shape != parts[i].shape:
            raise ArchsmithError(
                f"coupling function {i} ({type(self.fns[i]).__name__}) returned shape "
                f"{list(h.shape)}, but the part it updates has shape {list(parts[i].shape)}"
            )
        return h

    def forward(self, x: Tensor) -> Tensor:
        """``x: [B, C, ...] -> y: [B, C, ...]``."""
        return self._apply_updates(x, sign=1)

    def inverse(self, y: Tensor) -> Tensor:
        """``y: [B, C, ...] -> x: [B, C, ...]``, undoing the updates from the last one."""
        return self._apply_updates(y, sign=-1)

    def _apply_updates(self, x: Tensor, sign: int) -> Tensor:
        sizes = self.sizes(x)
        parts = list(x.split_with_sizes(sizes, self.dim))
        order = range(len(parts)) if sign > 0 else reversed(range(len(parts)))
        if torch.is_grad_enabled():
            for i in order:
                parts[i] = torch.add(parts[i], self._update(i, parts), alpha=sign)
            return torch.cat(parts, self.dim)
        # without autograd, each new part goes straight into its slice of the result (no cat)
        out = torch.empty_like(x)
        slices = out.split_with_sizes(sizes, self.dim)
        for i in order:
            parts[i] = torch.add(parts[i], self._update(i, parts), alpha=sign, out=slices[i])
        return out

    def reverse_step(
        self, y: Tensor, dy: Tensor, *, need_input_grad: bool = True, inplace: bool = False
    ) -> ReverseStep:
        """Fused inversion and backward: each function is evaluated once, with grad
        (:meth:`reverse_parts` on the parts of ``y`` and ``dy``).

        Args:
            inplace: ``y`` and ``dy`` are the caller's to overwrite (they become ``x`` and
                ``dx``); otherwise they are copied first.
        """
        sizes = self.sizes(y)
        if not inplace:
            # contiguous copies: the incoming gradient may be expanded or strided
            y = y.clone(memory_format=torch.contiguous_format)
            dy = dy.clone(memory_format=torch.contiguous_format)
        parts = list(y.split_with_sizes(sizes, self.dim))
        grads = list(dy.split_with_sizes(sizes, self.dim))
        pairs = self.reverse_parts(parts, grads, need_input_grad=need_input_grad)
        return ReverseStep(y, dy if need_input_grad else None, pairs)

    def forward_parts(self, parts: list[Tensor]) -> None:
        """The forward without autograd, in place on the parts: ``parts[i] += f_i(o_i)``.

        The engine keeps a stack of couplings that split alike as separate contiguous parts
        between blocks (no split, copy or concatenation per block).
        """
        for i in range(len(parts)):
            parts[i].add_(self._update(i, parts))

    def reverse_parts(
        self,
        parts: list[Tensor],
        grads: list[Tensor],
        *,
        need_input_grad: bool = True,
        fn_params: Sequence[Sequence[Tensor]] | None = None,
    ) -> list[tuple[Tensor, Tensor]]:
        """Reconstruct and backpropagate in place: ``parts`` (the output's) become the input's,
        ``grads`` (the output's gradient) become the input's gradient.

        Undoing update ``i`` (from the last): ``h = f_i(o_i)`` with ``o_i`` a leaf,
        ``x_i = y_i - h``; the gradient flows ``d o_i += J_{f_i}^T d y_i`` into the other parts,
        while ``d x_i = d y_i`` (the update is a residual). With ``need_input_grad`` False,
        ``f_0`` is differentiated for its parameters only, and ``grads`` is left incomplete.
        ``fn_params``: the trainable parameters of each function, when the caller has them
        (the engine gathers them once per step); by default they are looked up here.

        Returns:
            ``(parameter, gradient)`` pairs, as :attr:`ReverseStep.param_grads`.
        """
        pairs: list[tuple[Tensor, Tensor]] = []
        for i in reversed(range(len(parts))):
            pending = self._recompute(i, parts, need_input_grad)
            pairs += self._backprop([pending], grads, fn_params)
            # after the backward (the graph no longer needs the parts): x_i = y_i - h
            parts[i].sub_(pending.h.detach())
        return pairs

    def recompute_parts(
        self, parts: list[Tensor], *, need_input_grad: bool = True
    ) -> tuple[list[Tensor], list[PendingUpdate]]:
        """The first half of :meth:`reverse_parts`: reconstruct the input's parts (new tensors;
        ``parts`` is left as it is) and recompute every update's local graph, not yet
        differentiated. :meth:`backprop_parts` finishes, possibly on another thread (PaReprop)."""
        parts = list(parts)
        pending = []
        for i in reversed(range(len(parts))):
            update = self._recompute(i, parts, need_input_grad)
            parts[i] = parts[i] - update.h.detach()
            pending.append(update)
        return parts, pending

    def backprop_parts(
        self,
        pending: list[PendingUpdate],
        grads: list[Tensor],
        fn_params: Sequence[Sequence[Tensor]] | None = None,
    ) -> list[tuple[Tensor, Tensor]]:
        """The second half of :meth:`reverse_parts`: differentiate the recomputed updates,
        turning ``grads`` (in place) into the input's gradient; returns the parameters'."""
        return self._backprop(pending, grads, fn_params)

    def _recompute(self, i: int, parts: list[Tensor], need_input_grad: bool) -> PendingUpdate:
        fn = self.fns[i]
        # the other parts carry gradient to earlier updates (j < i), or to the input
        need_others = need_input_grad or i > 0
        with torch.enable_grad():
            others = self._others(parts, i).detach().requires_grad_(need_others)
            h = self.call(i, fn, _through(others))
        sizes = [p.shape[self.dim] for j, p in enumerate(parts) if j != i]
        return PendingUpdate(i, others if need_others else None, h, sizes)

    def _backprop(
        self,
        pending: list[PendingUpdate],
        grads: list[Tensor],
        fn_params: Sequence[Sequence[Tensor]] | None,
    ) -> list[tuple[Tensor, Tensor]]:
        buffers = {g.untyped_storage().data_ptr() for g in grads}
        pairs: list[tuple[Tensor, Tensor]] = []
        for update in pending:  # from the last update: grads[i] is final when f_i is reached
            i, others, h = update.part, update.others, update.h
            # the plan is taken in forward: a parameter frozen since then gets no gradient
            params = (
                [p for p in fn_params[i] if p.requires_grad]
                if fn_params is not None
                else trainable_parameters(self.fns[i])
            )
            inputs = ([others] if others is not None else []) + params
            if not inputs or not h.requires_grad:
                continue
            got = torch.autograd.grad(h, inputs, grads[i], allow_unused=True)
            if others is not None:
                d_others, got = got[0], got[1:]
                if d_others is None:
                    pass
                elif len(grads) == 2:  # one other part: no split
                    grads[1 - i].add_(d_others)
                else:
                    rest = [j for j in range(len(grads)) if j != i]
                    pieces = d_others.split_with_sizes(update.sizes, self.dim)
                    for j, piece in zip(rest, pieces, strict=True):
                        grads[j].add_(piece)
            for p, g in zip(params, got, strict=True):
                if g is not None:
                    # a gradient passed straight through (f(x) = x + p) aliases a buffer that
                    # is overwritten from here on
                    if g.untyped_storage().data_ptr() in buffers:
                        g = g.clone()
                    pairs.append((p, g))
        return pairs


class PendingUpdate(NamedTuple):
    """One recomputed update of a multi-split coupling, waiting for its gradient.

    Attributes:
        part: the part it updates.
        others: the leaf it read (None when no gradient is wanted for it).
        h: its output, with the local graph.
        sizes: the sizes of the other parts along the split dimension, in order.
    """

    part: int
    others: Tensor | None
    h: Tensor
    sizes: list[int]


class AdditiveCoupling(MultiSplitCoupling):
    """RevNet's additive coupling (Gomez et al., NeurIPS 2017).

    ``x: [B, C, ...] = (x1, x2)`` split along ``dim``; ``y1 = x1 + F(x2)``,
    ``y2 = x2 + G(y1)``. With ``C`` odd the default split is ``(ceil(C/2), floor(C/2))``:
    ``F`` maps ``c2 -> c1`` and ``G`` maps ``c1 -> c2`` along ``dim`` (:func:`part_sizes`).

    Args:
        f: ``F``, updating the first part from the second.
        g: ``G``, updating the second part from the new first.
        dim: the split dimension. Default 1 (channels); -1 for ``[B, T, D]`` sequences.
        split: size of the first part; default ``ceil(C/2)``.
    """

    def __init__(self, f: nn.Module, g: nn.Module, dim: int = 1, split: int | None = None):
        if split is not None and split < 1:
            raise ArchsmithError(f"additive coupling split {split}: the first part would be empty")
        super().__init__([f, g], dim)
        self._first = split

    @property
    def f(self) -> nn.Module:
        return self.fns[0]

    @property
    def g(self) -> nn.Module:
        return self.fns[1]

    def sizes(self, x: Tensor) -> tuple[int, ...]:
        channels = x.shape[self.dim]
        if self._first is None:
            return part_sizes(channels, 2)
        if channels - self._first < 1:
            raise ArchsmithError(
                f"additive coupling split {self._first} leaves an empty second part of an input "
                f"with {channels} along dim {self.dim}"
            )
        return (self._first, channels - self._first)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, split={self._first}"


class AffineCoupling(Coupling):
    """Affine coupling (Dinh et al., "Density estimation using Real NVP", ICLR 2017).

    ``x: [B, C, ...] = (x1, x2)`` split along ``dim``; ``y1 = x1`` and
    ``y2 = x2 * s + t`` with ``(r, t) = net(x1)`` split in two along ``dim``; ``net`` maps
    ``[B, c1, ...] -> [B, 2 * c2, ...]``. The scale can never be zero, so the inverse
    ``x2 = (y2 - t) / s`` always exists:

    - ``"exp_tanh"``: ``s = exp(tanh(r))`` in ``[1/e, e]`` (bounded both ways, so a deep stack
      stays well conditioned);
    - ``"sigmoid"``: ``s = sigmoid(r + 2) + eps`` in ``(eps, 1 + eps)`` (Glow's choice,
      Kingma & Dhariwal 2018, with ``eps`` keeping it away from 0 in floating point).

    Only ``x2`` changes: alternate with another coupling (or another split) to transform all.

    Args:
        net: the conditioner.
        dim: the split dimension. Default 1.
        split: size of ``x1``; default ``ceil(C/2)``.
        scale: ``"exp_tanh"`` (default) or ``"sigmoid"``.
        eps: floor of the sigmoid scale. Default 1e-3.
    """

    def __init__(
        self,
        net: nn.Module,
        dim: int = 1,
        *,
        split: int | None = None,
        scale: Literal["exp_tanh", "sigmoid"] = "exp_tanh",
        eps: float = 1e-3,
    ) -> None:
        super().__init__(dim)
        if not isinstance(net, nn.Module):
            raise ArchsmithError(
                f"affine coupling net must be an nn.Module, got {type(net).__name__}"
            )
        if scale not in ("exp_tanh", "sigmoid"):
            raise ArchsmithError(
                f"affine coupling scale must be 'exp_tanh' or 'sigmoid', got {scale!r}"
            )
        if not eps > 0:
            raise ArchsmithError(f"affine coupling eps must be > 0, got {eps}")
        if split is not None and split < 1:
            raise ArchsmithError(f"affine coupling split {split}: the first part would be empty")
        self.net = net
        self.split = split
        self.scale = scale
        self.eps = eps

    def sizes(self, x: Tensor) -> tuple[int, int]:
        channels = x.shape[self.dim]
        if self.split is None:
            c1, c2 = part_sizes(channels, 2)
            return c1, c2
        if channels - self.split < 1:
            raise ArchsmithError(
                f"affine coupling split {self.split} leaves an empty second part of an input "
                f"with {channels} along dim {self.dim}"
            )
        return self.split, channels - self.split

    def _scale_shift(self, x1: Tensor, c2: int) -> tuple[Tensor, Tensor]:
        out = self.call(0, self.net, x1)
        expected = list(x1.shape)
        expected[self.dim] = 2 * c2
        if list(out.shape) != expected:
            raise ArchsmithError(
                f"affine coupling net ({type(self.net).__name__}) returned shape "
                f"{list(out.shape)}, expected {expected} (scale and shift of the second part)"
            )
        raw, shift = out.split([c2, c2], self.dim)
        if self.scale == "exp_tanh":
            return torch.tanh(raw).exp(), shift
        return torch.sigmoid(raw + 2.0) + self.eps, shift

    def forward(self, x: Tensor) -> Tensor:
        """``x: [B, C, ...] -> y: [B, C, ...]``."""
        x1, x2 = x.split(self.sizes(x), self.dim)
        s, t = self._scale_shift(x1, x2.shape[self.dim])
        return torch.cat([x1, x2 * s + t], self.dim)

    def inverse(self, y: Tensor) -> Tensor:
        """``y: [B, C, ...] -> x: [B, C, ...]``."""
        y1, y2 = y.split(self.sizes(y), self.dim)
        s, t = self._scale_shift(y1, y2.shape[self.dim])
        return torch.cat([y1, (y2 - t) / s], self.dim)

    def reverse_step(self, y: Tensor, dy: Tensor, *, need_input_grad: bool = True) -> ReverseStep:
        """Fused inversion and backward, one evaluation of ``net``: with ``x2 = (y2 - t) / s``,
        ``dx2 = dy2 * s``, ``ds = dy2 * x2``, ``dt = dy2``, ``dx1 = dy1 + J^T (ds, dt)``."""
        sizes = self.sizes(y)
        y1, y2 = y.split_with_sizes(sizes, self.dim)
        dy1, dy2 = dy.split_with_sizes(sizes, self.dim)
        params = trainable_parameters(self)
        with torch.enable_grad():
            x1 = y1.detach().requires_grad_(need_input_grad)
            s, t = self._scale_shift(_through(x1), sizes[1])
        x2 = (y2 - t.detach()) / s.detach()
        x = torch.cat([y1, x2], self.dim)
        inputs = ([x1] if need_input_grad else []) + params
        dx1: Tensor | None = None
        pairs: list[tuple[Tensor, Tensor]] = []
        if inputs and s.requires_grad:
            got = torch.autograd.grad([s, t], inputs, [dy2 * x2, dy2], allow_unused=True)
            if need_input_grad:
                dx1, got = got[0], got[1:]
            pairs = [(p, g) for p, g in zip(params, got, strict=True) if g is not None]
        if not need_input_grad:
            return ReverseStep(x, None, pairs)
        dx1 = dy1 if dx1 is None else dy1 + dx1
        return ReverseStep(x, torch.cat([dx1, dy2 * s.detach()], self.dim), pairs)
