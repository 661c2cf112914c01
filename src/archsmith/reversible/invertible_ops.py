"""Parameter-free invertible maps of i-RevNet: space-to-depth and injective padding.

Jacobsen, Smeulders & Oyallon, "i-RevNet: Deep Invertible Networks", ICLR 2018, section 3.1:
downsampling that loses nothing (space-to-depth, the inverse of a sub-pixel convolution) and
injective padding (zero channels appended, so the channel count can grow and the halves of a
coupling have room, while the inverse simply drops them).

Both are modules with ``forward(x)`` and ``inverse(y)`` such that ``inverse(forward(x)) == x``
exactly (they only move or add numbers; no arithmetic). :class:`InvertibleDownsampling` is
space-to-depth as a :class:`~archsmith.reversible.couplings.Coupling`, so it sits inside a
:class:`~archsmith.reversible.engine.ReversibleSequence` between stages and the whole trunk of an
i-RevNet keeps one output.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import rearrange
from torch import Tensor, nn

from archsmith.errors import ArchsmithError
from archsmith.reversible._walk import trainable_parameters
from archsmith.reversible.couplings import AdditiveCoupling, Coupling, ReverseStep, part_sizes

__all__ = [
    "DownsamplingCoupling",
    "HookSafeAdditiveCoupling",
    "InjectivePad",
    "InvertibleDownsampling",
    "SpaceToDepth",
]

# einops patterns by number of spatial dimensions; the channel ordering ``(c p1 p2)`` is the
# one of torch's ``pixel_unshuffle`` (channel outermost, then the offsets in the block).
_TO_DEPTH = {
    1: "b c (w p1) -> b (c p1) w",
    2: "b c (h p1) (w p2) -> b (c p1 p2) h w",
    3: "b c (d p1) (h p2) (w p3) -> b (c p1 p2 p3) d h w",
}
_TO_SPACE = {n: " -> ".join(reversed(p.split(" -> "))) for n, p in _TO_DEPTH.items()}


class SpaceToDepth(nn.Module):
    """Invertible downsampling: each ``block``-sized spatial patch becomes channels.

    ``x: [B, C, *S] -> [B, C * block**n, *(S / block)]`` for ``n = len(S)`` spatial dimensions
    (1, 2 or 3), every spatial size divisible by ``block``. ``inverse`` is depth-to-space.
    For ``n = 2`` it equals :func:`torch.nn.functional.pixel_unshuffle`.
    """

    def __init__(self, block: int = 2, spatial_dims: int = 2) -> None:
        super().__init__()
        if block < 1:
            raise ArchsmithError(f"space-to-depth block must be >= 1, got {block}")
        if spatial_dims not in _TO_DEPTH:
            raise ArchsmithError(f"space-to-depth takes 1, 2 or 3 spatial dims, got {spatial_dims}")
        self.block = block
        self.spatial_dims = spatial_dims

    def _sizes(self) -> dict[str, int]:
        return {f"p{i + 1}": self.block for i in range(self.spatial_dims)}

    def forward(self, x: Tensor) -> Tensor:
        """``x: [B, C, *S] -> [B, C * block**n, *(S / block)]``."""
        if x.dim() != self.spatial_dims + 2:
            raise ArchsmithError(
                f"space-to-depth over {self.spatial_dims} spatial dims expects a "
                f"{self.spatial_dims + 2}-d input, got shape {list(x.shape)}"
            )
        bad = [s for s in x.shape[2:] if s % self.block]
        if bad:
            raise ArchsmithError(
                f"space-to-depth: spatial sizes {list(x.shape[2:])} must be divisible by "
                f"block {self.block}"
            )
        return rearrange(x, _TO_DEPTH[self.spatial_dims], **self._sizes())

    def inverse(self, y: Tensor) -> Tensor:
        """Depth-to-space, ``[B, C * block**n, *S] -> [B, C, *(S * block)]``."""
        factor = self.block**self.spatial_dims
        if y.dim() != self.spatial_dims + 2 or y.shape[1] % factor:
            raise ArchsmithError(
                f"depth-to-space expects [B, C * {factor}, ...] with "
                f"{self.spatial_dims} spatial dims, got shape {list(y.shape)}"
            )
        return rearrange(y, _TO_SPACE[self.spatial_dims], **self._sizes())

    def extra_repr(self) -> str:
        return f"block={self.block}, spatial_dims={self.spatial_dims}"


class InjectivePad(nn.Module):
    """Append ``extra`` zero channels: ``x: [B, C, *S] -> [B, C + extra, *S]``.

    Injective, not bijective: ``inverse`` drops the appended channels (what was zero in an
    exact forward image). Gradients pass to the original channels only.

    With ``groups=g`` the channels are split into ``g`` parts as a coupling splits them
    (:func:`~archsmith.reversible.couplings.part_sizes` of ``C`` and of ``C + extra``) and each
    part gets its own zeros appended: ``[x_1, 0, x_2, 0]`` for ``g = 2``. Then every half of the
    following coupling holds real data; padding only at the end would leave the second half all
    zeros, and a normalization of constant channels turns the rounding error of reconstruction
    into large gradient errors.
    """

    def __init__(self, extra: int, groups: int = 1) -> None:
        super().__init__()
        if extra < 0:
            raise ArchsmithError(f"injective padding adds >= 0 channels, got {extra}")
        if groups < 1:
            raise ArchsmithError(f"injective padding groups must be >= 1, got {groups}")
        self.extra = extra
        self.groups = groups

    def _sizes(self, channels: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return part_sizes(channels, self.groups), part_sizes(channels + self.extra, self.groups)

    def forward(self, x: Tensor) -> Tensor:
        """``x: [B, C, *S] -> [B, C + extra, *S]`` (zeros appended along dim 1, per group)."""
        if self.extra == 0:
            return x
        if x.dim() < 2 or x.shape[1] < self.groups:
            raise ArchsmithError(
                f"injective padding in {self.groups} groups expects [B, C >= {self.groups}, ...], "
                f"got shape {list(x.shape)}"
            )
        sizes_in, sizes_out = self._sizes(x.shape[1])
        pieces: list[Tensor] = []
        for part, n_in, n_out in zip(x.split(sizes_in, 1), sizes_in, sizes_out, strict=True):
            pieces.append(part)
            if n_out > n_in:
                pieces.append(x.new_zeros((x.shape[0], n_out - n_in, *x.shape[2:])))
        return torch.cat(pieces, dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        """``y: [B, C + extra, *S] -> [B, C, *S]`` (the appended channels dropped)."""
        if y.dim() < 2 or y.shape[1] - self.extra < self.groups:
            raise ArchsmithError(
                f"injective padding inverse expects more than {self.extra} channels, "
                f"got shape {list(y.shape)}"
            )
        if self.extra == 0:
            return y
        sizes_in, sizes_out = self._sizes(y.shape[1] - self.extra)
        parts = y.split(sizes_out, 1)
        return torch.cat([p[:, :n] for p, n in zip(parts, sizes_in, strict=True)], dim=1)

    def extra_repr(self) -> str:
        return f"extra={self.extra}, groups={self.groups}"


class InvertibleDownsampling(Coupling):
    """Space-to-depth as a block of a reversible sequence (i-RevNet's invertible downsampling).

    ``x: [B, C, *S] -> [B, C * block**n, *(S / block)]``. A permutation of the entries, so its
    backward step is exact and needs no autograd: the input is depth-to-space of the output and
    the input's gradient is depth-to-space of the output's gradient.
    """

    def __init__(self, block: int = 2, spatial_dims: int = 2) -> None:
        super().__init__(dim=1)
        self.op = SpaceToDepth(block, spatial_dims)

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)

    def inverse(self, y: Tensor) -> Tensor:
        return self.op.inverse(y)

    def reverse_step(self, y: Tensor, dy: Tensor, *, need_input_grad: bool = True) -> ReverseStep:
        dx = self.op.inverse(dy) if need_input_grad else None
        return ReverseStep(self.op.inverse(y), dx, [])


class HookSafeAdditiveCoupling(AdditiveCoupling):
    """:class:`~archsmith.reversible.couplings.AdditiveCoupling` whose sub-functions never see a
    tensor that module hooks cannot watch.

    Module hooks that track an input's gradient (the module tracker of
    :class:`torch.utils.flop_counter.FlopCounterMode`, which :func:`archsmith.cost.measure`
    runs) fail on two kinds of input the engine produces:

    - in the engine's forward (grad disabled), splits of an input that requires grad are views
      with ``requires_grad=True`` but no ``grad_fn``: they get ``detach()`` (no graph is built
      there anyway);
    - in its backward, each sub-function is differentiated with :func:`torch.autograd.grad`
      from a leaf, and a hook cannot sit on a leaf inside ``autograd.grad``: they get a view
      (a free, non-leaf alias).

    Same numbers, same parameters, same state-dict keys.
    """

    def call(self, key: int, fn: Callable[..., Tensor], *args: Tensor) -> Tensor:
        if torch.is_grad_enabled():
            return super().call(key, fn, *(a.view_as(a) for a in args))
        return super().call(key, fn, *(a.detach() for a in args))


class DownsamplingCoupling(Coupling):
    """Two i-RevNet blocks, the first one downsampling (Jacobsen et al., 2018, section 3.1).

    The paper's downsampling block maps ``(x1, x2) -> (S x2, S x1 + F(x2))`` with ``S``
    space-to-depth by 2 and ``F`` starting with a stride-2 convolution, so ``F`` reads ``x2`` at
    full resolution; a plain block ``(a, b) -> (b, a + G(b))`` follows. Together (the swaps
    cancel), for ``x: [B, c1 + c2, H, W]``::

        y1 = S x1 + F(x2)        F: [B, c2, H, W] -> [B, 4 c1, H/2, W/2]
        y2 = S x2 + G(y1)        G: [B, 4 c1, H/2, W/2] -> [B, 4 c2, H/2, W/2]

    and ``y = [y1, y2]: [B, 4 (c1 + c2), H/2, W/2]``; the inverse is
    ``x2 = S^-1 (y2 - G(y1))``, ``x1 = S^-1 (y1 - F(x2))``.

    Args:
        f: the strided ``F``; g: ``G``.
        split: ``c1`` (default ``ceil(C / 2)``, as :func:`part_sizes`).
    """

    def __init__(self, f: nn.Module, g: nn.Module, split: int | None = None) -> None:
        super().__init__(dim=1)
        self.f, self.g = f, g
        self.split = split
        self.op = SpaceToDepth(2, spatial_dims=2)

    def call(self, key: int, fn: Callable[..., Tensor], *args: Tensor) -> Tensor:
        # what HookSafeAdditiveCoupling does, for the same module hooks
        if torch.is_grad_enabled():
            return super().call(key, fn, *(a.view_as(a) for a in args))
        return super().call(key, fn, *(a.detach() for a in args))

    def _sizes(self, channels: int) -> tuple[int, int]:
        if self.split is None:
            c1, c2 = part_sizes(channels, 2)
            return c1, c2
        if not 0 < self.split < channels:
            raise ArchsmithError(
                f"downsampling coupling split {self.split} leaves an empty part of {channels}"
            )
        return self.split, channels - self.split

    def _f(self, x2: Tensor, out_shape: torch.Size) -> Tensor:
        h = self.call(0, self.f, x2)
        if h.shape != out_shape:
            raise ArchsmithError(
                f"downsampling coupling F ({type(self.f).__name__}) returned shape "
                f"{list(h.shape)}, expected {list(out_shape)} (stride 2, 4x the first part)"
            )
        return h

    def forward(self, x: Tensor) -> Tensor:
        """``x: [B, C, H, W] -> [B, 4C, H/2, W/2]``."""
        x1, x2 = x.split(self._sizes(x.shape[1]), 1)
        s1, s2 = self.op(x1), self.op(x2)
        y1 = s1 + self._f(x2, s1.shape)
        return torch.cat([y1, s2 + self.call(1, self.g, y1)], 1)

    def inverse(self, y: Tensor) -> Tensor:
        """``y: [B, 4C, H/2, W/2] -> [B, C, H, W]``."""
        c1, c2 = self._sizes(y.shape[1] // 4)
        y1, y2 = y.split([4 * c1, 4 * c2], 1)
        x2 = self.op.inverse(y2 - self.call(1, self.g, y1))
        x1 = self.op.inverse(y1 - self._f(x2, y1.shape))
        return torch.cat([x1, x2], 1)

    def reverse_step(self, y: Tensor, dy: Tensor, *, need_input_grad: bool = True) -> ReverseStep:
        """Fused inversion and backward, ``G`` and ``F`` evaluated once each: ``S`` is a
        permutation, so the gradients through it are ``S^-1`` of the output's."""
        c1, c2 = self._sizes(y.shape[1] // 4)
        y1, y2 = y.split([4 * c1, 4 * c2], 1)
        dy1, dy2 = dy.split([4 * c1, 4 * c2], 1)
        pairs: list[tuple[Tensor, Tensor]] = []
        g_params, f_params = trainable_parameters(self.g), trainable_parameters(self.f)
        with torch.enable_grad():
            y1_leaf = y1.detach().requires_grad_()
            g_out = self.call(1, self.g, y1_leaf)
        got = torch.autograd.grad(g_out, [y1_leaf, *g_params], dy2, allow_unused=True)
        dy1_total = dy1 if got[0] is None else dy1 + got[0]
        pairs += [(p, g) for p, g in zip(g_params, got[1:], strict=True) if g is not None]
        x2 = self.op.inverse(y2 - g_out.detach())
        with torch.enable_grad():
            x2_leaf = x2.detach().requires_grad_(need_input_grad)
            f_out = self._f(x2_leaf, y1.shape)
        inputs = ([x2_leaf] if need_input_grad else []) + f_params
        dx2_f: Tensor | None = None
        if inputs and f_out.requires_grad:
            got = torch.autograd.grad(f_out, inputs, dy1_total, allow_unused=True)
            if need_input_grad:
                dx2_f, got = got[0], got[1:]
            pairs += [(p, g) for p, g in zip(f_params, got, strict=True) if g is not None]
        x = torch.cat([self.op.inverse(y1 - f_out.detach()), x2], 1)
        if not need_input_grad:
            return ReverseStep(x, None, pairs)
        dx2 = self.op.inverse(dy2)
        if dx2_f is not None:
            dx2 = dx2 + dx2_f
        return ReverseStep(x, torch.cat([self.op.inverse(dy1_total), dx2], 1), pairs)
