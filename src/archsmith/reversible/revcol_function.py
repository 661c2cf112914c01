"""Column-wise reversible propagation of RevCol (Cai et al., "Reversible Column Networks",
ICLR 2023), as a custom autograd Function.

Column ``c`` holds features ``x_1^c .. x_L^c`` at ``L`` levels; ``x_0`` (the stem output) feeds
every column. Level ``l`` of column ``c`` is (eq. 4 of the paper, levels 1-indexed)::

    x_l^c = F_l(x_{l-1}^c, x_{l+1}^{c-1}) + gamma_l * x_l^{c-1}

with ``gamma_l`` non-zero, so the previous column is recovered top-down from the current one::

    x_l^{c-1} = (x_l^c - F_l(x_{l-1}^c, x_{l+1}^{c-1})) / gamma_l       for l = L .. 1

(``x_{L+1}`` does not exist; the first column has no previous one and reads nothing from it).

The forward keeps only ``x_0`` and the last column. The backward walks the columns from the
last to the first; inside a column it walks the levels top-down, and for each level it evaluates
``F_l`` once, with gradients: its value reconstructs ``x_l^{c-1}`` and its local graph carries
the gradient to ``x_{l-1}^c``, ``x_{l+1}^{c-1}``, ``x_l^{c-1}`` and the parameters. Going
top-down, the gradient of ``x_l^c`` is complete when level ``l`` is reached: its other users,
``F_{l+1}^c`` (same column, one level up) and column ``c + 1``, have been processed already.

Dropout replays: the random state before each ``F_l`` call of the forward is stored and
restored for its single re-evaluation. Buffers (BatchNorm running statistics) are updated by
the forward only: the backward restores them after its re-evaluations.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import torch
from torch import Tensor, nn

__all__ = ["ColumnLike", "reversible_columns"]


class ColumnLike(Protocol):
    """What :func:`reversible_columns` needs of a RevCol column (an ``nn.Module``)."""

    num_levels: int

    def fusion(self, level: int, lower: Tensor, higher: Tensor | None) -> Tensor:
        """``F_level(lower, higher)``: ``lower = x_{l-1}^c``, ``higher = x_{l+1}^{c-1}``."""
        ...

    def gamma(self, level: int) -> Tensor:
        """The non-zero scale ``gamma_level`` (broadcastable to the level's features)."""
        ...

    def level_parameters(self, level: int) -> list[nn.Parameter]:
        """The parameters ``F_level`` and ``gamma_level`` read."""
        ...

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]: ...


class _RngState:
    """The CPU generator state and, for CUDA tensors, the state of their device."""

    def __init__(self, device: torch.device) -> None:
        self.cpu = torch.get_rng_state()
        self.device = device
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    @contextmanager
    def replay(self) -> Iterator[None]:
        devices = [self.device] if self.cuda is not None else []
        # fork: replaying must not move the caller's random stream
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


@contextmanager
def _buffers_kept(modules: Sequence[Any]) -> Iterator[None]:
    """Restore every buffer of ``modules`` on exit (re-evaluations must not count twice)."""
    saved = [(b, b.detach().clone()) for m in modules for b in m.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, value in saved:
                buf.copy_(value)


def _column_forward(
    column: ColumnLike, x0: Tensor, prev: Sequence[Tensor] | None, rng: list[_RngState] | None
) -> list[Tensor]:
    """One column: ``[x_1^c .. x_L^c]`` from ``x0`` and the previous column (None: first)."""
    out: list[Tensor] = []
    lower = x0
    for level in range(column.num_levels):
        higher = prev[level + 1] if prev is not None and level + 1 < column.num_levels else None
        if rng is not None:
            rng.append(_RngState(x0.device))
        x = column.fusion(level, lower, higher)
        if prev is not None:
            x = x + column.gamma(level) * prev[level]
        out.append(x)
        lower = x
    return out


def plain_columns(columns: Sequence[ColumnLike], x0: Tensor) -> list[Tensor]:
    """The autograd twin: all columns in sequence, every activation kept for backward."""
    feats: list[Tensor] | None = None
    for column in columns:
        feats = _column_forward(column, x0, feats, None)
    assert feats is not None
    return feats


class _ReversibleColumns(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, columns: Sequence[ColumnLike], params: Sequence[Tensor], x0: Tensor, *flat: Tensor
    ) -> tuple[Tensor, ...]:
        del flat  # the parameters again, as inputs so autograd routes their gradients here
        rng: list[_RngState] = []
        with torch.no_grad():
            feats: list[Tensor] | None = None
            for column in columns:
                feats = _column_forward(column, x0, feats, rng)
        assert feats is not None
        ctx.columns, ctx.params, ctx.rng = columns, params, rng
        ctx.save_for_backward(x0, *feats)
        return tuple(feats)

    @staticmethod
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        x0, *feats = ctx.saved_tensors
        columns: Sequence[ColumnLike] = ctx.columns
        index = {id(p): i for i, p in enumerate(ctx.params)}
        param_grads: list[Tensor | None] = [None] * len(ctx.params)
        num_levels = len(feats)
        g: list[Tensor | None] = list(grads)
        g_x0: Tensor | None = None
        x0_leaf = x0.detach().requires_grad_(ctx.needs_input_grad[2])

        def add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
            return b if a is None else a if b is None else a + b

        with _buffers_kept(columns), torch.enable_grad():
            for c in range(len(columns) - 1, -1, -1):
                column = columns[c]
                first = c == 0
                prev: list[Tensor | None] = [None] * num_levels  # x^{c-1}, rebuilt top-down
                g_prev: list[Tensor | None] = [None] * num_levels
                for level in range(num_levels - 1, -1, -1):
                    lower = x0_leaf if level == 0 else feats[level - 1].detach().requires_grad_()
                    higher = None
                    if not first and level + 1 < num_levels:
                        higher_value = prev[level + 1]
                        assert higher_value is not None
                        higher = higher_value.detach().requires_grad_()
                    with ctx.rng[c * num_levels + level].replay():
                        # the modules get views, not the leaves themselves: module hooks that
                        # watch their inputs' gradients (FlopCounterMode's module tracker) may
                        # not sit on a leaf inside autograd.grad
                        f = column.fusion(
                            level,
                            lower.view_as(lower),
                            None if higher is None else higher.view_as(higher),
                        )
                    # x0 may not require grad (a frozen stem, an input without grad), nor may
                    # parameters (frozen): autograd.grad only takes tensors that do
                    inputs: list[Tensor] = [lower] if lower.requires_grad else []
                    if higher is not None:
                        inputs.append(higher)
                    out = f
                    if not first:
                        gamma = column.gamma(level)
                        with torch.no_grad():
                            prev[level] = (feats[level] - f) / gamma
                        prev_leaf = prev[level].detach().requires_grad_()  # type: ignore[union-attr]
                        inputs.append(prev_leaf)
                        out = f + gamma * prev_leaf
                    level_params = [p for p in column.level_parameters(level) if id(p) in index]
                    if g[level] is None or not out.requires_grad:
                        continue  # nothing flows back through this level
                    got = torch.autograd.grad(
                        out, [*inputs, *level_params], g[level], allow_unused=True
                    )
                    rest = list(got)
                    got_lower = rest.pop(0) if lower.requires_grad else None
                    if level == 0:
                        g_x0 = add(g_x0, got_lower)
                    else:
                        g[level - 1] = add(g[level - 1], got_lower)
                    if higher is not None:
                        g_prev[level + 1] = add(g_prev[level + 1], rest.pop(0))
                    if not first:
                        g_prev[level] = add(g_prev[level], rest.pop(0))
                    for p, gp in zip(level_params, rest, strict=True):
                        i = index[id(p)]
                        param_grads[i] = add(param_grads[i], gp)
                if not first:
                    feats = [t for t in prev if t is not None]
                    g = g_prev
        return (None, None, g_x0 if ctx.needs_input_grad[2] else None, *param_grads)


def reversible_columns(
    columns: Sequence[ColumnLike], x0: Tensor, params: Sequence[Tensor]
) -> list[Tensor]:
    """Run RevCol's columns on the stem output ``x0``, keeping only ``x0`` and the last column.

    Args:
        columns: the columns, first to last (``nn.Module`` s following :class:`ColumnLike`).
        x0: ``[B, C_0, H, W]``, the input every column reads.
        params: the columns' trainable parameters, each once (their gradients come back
            through this function; frozen ones must be left out).

    Returns:
        ``[x_1 .. x_L]`` of the last column, ``x_l: [B, C_l, H_l, W_l]``.
    """
    return list(_ReversibleColumns.apply(columns, list(params), x0, *params))
