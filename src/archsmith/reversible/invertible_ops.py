"""Parameter-free invertible maps of i-RevNet: space-to-depth and injective padding.

Jacobsen, Smeulders & Oyallon, "i-RevNet: Deep Invertible Networks", ICLR 2018, section 3.1:
downsampling that loses nothing (space-to-depth, the inverse of a sub-pixel convolution) and
injective padding (zero channels appended, so the channel count can grow and the halves of a
coupling have room, while the inverse simply drops them).

Both are modules with ``forward(x)`` and ``inverse(y)`` such that ``inverse(forward(x)) == x``
exactly (they only move or add numbers; no arithmetic).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from archsmith.errors import ArchsmithError

__all__ = ["InjectivePad", "SpaceToDepth"]

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
    """

    def __init__(self, extra: int) -> None:
        super().__init__()
        if extra < 0:
            raise ArchsmithError(f"injective padding adds >= 0 channels, got {extra}")
        self.extra = extra

    def forward(self, x: Tensor) -> Tensor:
        """``x: [B, C, *S] -> [B, C + extra, *S]`` (zeros appended along dim 1)."""
        if self.extra == 0:
            return x
        zeros = x.new_zeros((x.shape[0], self.extra, *x.shape[2:]))
        return torch.cat([x, zeros], dim=1)

    def inverse(self, y: Tensor) -> Tensor:
        """``y: [B, C + extra, *S] -> [B, C, *S]`` (the appended channels dropped)."""
        if y.dim() < 2 or y.shape[1] <= self.extra:
            raise ArchsmithError(
                f"injective padding inverse expects more than {self.extra} channels, "
                f"got shape {list(y.shape)}"
            )
        return y[:, : y.shape[1] - self.extra] if self.extra else y

    def extra_repr(self) -> str:
        return f"extra={self.extra}"
