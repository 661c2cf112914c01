"""i-RevNet: a fully invertible network with an explicit inverse.

Jacobsen, Smeulders & Oyallon, "i-RevNet: Deep Invertible Networks", ICLR 2018. Nothing is
discarded before the classifier: the input is folded by invertible downsampling
(space-to-depth), widened by injective padding (zero channels), and sent through stages of
additive couplings, each later stage opening with a downsampling block. ``inverse(features(x))`` returns
``x`` (to rounding), and training keeps only the trunk's output: the whole trunk, downsampling
included, is one :class:`~archsmith.reversible.engine.ReversibleSequence`.

An i-RevNet block maps ``(x1, x2) -> (x2, x1 + F(x2))``; two consecutive blocks are exactly
RevNet's additive coupling ``y1 = x1 + F1(x2)``, ``y2 = x2 + G(y1)`` with ``G = F2`` (the swaps
cancel), so one coupling here is two i-RevNet blocks. ``F`` is the paper's bottleneck,
``norm -> act -> conv3x3 -> norm -> act -> [dropout] -> conv3x3 -> norm -> act -> conv3x3``.

Layout (``in_shape = (C, H, W)``): space-to-depth by 2 (``[4C, H/2, W/2]``), injective padding to
``channels`` (zeros appended to each half of the first coupling, so both halves carry data),
``blocks[0]`` couplings, then every further stage of ``blocks[i]`` couplings opens with a
downsampling one; a classifier (norm, activation, global average pooling, linear) on the final
map. Downsampling (``downsampling=``):

- ``"strided"`` (default, the paper's block): ``(x1, x2) -> (S x2, S x1 + F(x2))`` with ``F``'s
  first convolution of stride 2, so ``F`` reads ``x2`` at full resolution
  (:class:`~archsmith.reversible.invertible_ops.DownsamplingCoupling`);
- ``"fold"``: space-to-depth of the whole map as a block of its own, then ordinary couplings
  (``F`` only ever sees the folded map; a little cheaper).
 On digits ``[1, 8, 8]`` with ``channels=16`` and two stages: ``[4, 4, 4]`` padded to
``[16, 4, 4]``, then ``[64, 2, 2]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Annotated, Literal

from torch import Tensor, nn

from archsmith.errors import ArchsmithError
from archsmith.options import LayerName, Range
from archsmith.registry import LayerArg, get_layer, register_model
from archsmith.reversible.couplings import Coupling, part_sizes
from archsmith.reversible.engine import ReversibleSequence
from archsmith.reversible.invertible_ops import (
    DownsamplingCoupling,
    HookSafeAdditiveCoupling,
    InjectivePad,
    InvertibleDownsampling,
    SpaceToDepth,
)

__all__ = ["IRevNet", "IRevNetBottleneck", "irevnet"]


class IRevNetBottleneck(nn.Module):
    """i-RevNet's residual function ``F``: ``[B, in_channels, H, W] -> [B, out_channels, H / s,
    W / s]``, three 3x3 convolutions of width ``hidden``, the first of stride ``s``, each
    preceded by norm and activation (but the first, with ``first=True``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        hidden: int,
        *,
        norm_layer: LayerArg = "batchnorm",
        act_layer: LayerArg = "relu",
        dropout: float = 0.0,
        first: bool = False,
        stride: int = 1,
    ) -> None:
        super().__init__()
        norm, act = get_layer("norm", norm_layer), get_layer("act", act_layer)
        # the network's first function starts at its convolution, as in the paper's code: its
        # input holds the padding's zero channels, and normalizing a constant channel would
        # amplify the rounding error of their reconstruction (1/sqrt(eps))
        lead = [] if first else [norm(in_channels), act()]
        self.body = nn.Sequential(
            *lead,
            nn.Conv2d(in_channels, hidden, 3, stride=stride, padding=1, bias=False),
            norm(hidden),
            act(),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.Conv2d(hidden, hidden, 3, padding=1, bias=False),
            norm(hidden),
            act(),
            nn.Conv2d(hidden, out_channels, 3, padding=1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.body(x)
        return out


class IRevNet(nn.Module):
    """i-RevNet classifier: ``x: [B, C, H, W] -> [B, num_outputs]``; ``features`` and
    ``inverse`` map between the input and the final feature map exactly.

    Args:
        in_shape: ``(C, H, W)``, ``H`` and ``W`` divisible by ``2 ** len(blocks)``.
        num_outputs: classes.
        channels: width after injective padding (at least ``4 * C``, the width after the first
            space-to-depth); each further stage multiplies it by 4.
        blocks: couplings per stage (each = two i-RevNet blocks; a later stage's first one
            downsamples).
        width_ratio: hidden width of ``F`` relative to the half it writes (i-RevNet uses 1/4
            on ImageNet; small inputs want more).
        downsampling: ``"strided"`` (the paper's block) or ``"fold"`` (see the module).
        reversible: keep only the trunk's output (True) or every activation (False, the twin).
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        num_outputs: int,
        channels: int = 16,
        blocks: Sequence[int] = (2, 2),
        *,
        width_ratio: float = 1.0,
        norm_layer: LayerArg = "batchnorm",
        act_layer: LayerArg = "relu",
        dropout: float = 0.0,
        downsampling: Literal["strided", "fold"] = "strided",
        reversible: bool = True,
    ) -> None:
        super().__init__()
        if downsampling not in ("strided", "fold"):
            raise ArchsmithError(
                f"irevnet.downsampling must be 'strided' or 'fold', got {downsampling!r}"
            )
        c, h, w = in_shape
        stages = len(blocks)
        if stages < 1 or min(blocks) < 1:
            raise ArchsmithError(
                f"irevnet.blocks: give >= 1 coupling per stage, got {list(blocks)}"
            )
        fold = 2**stages
        if h % fold or w % fold:
            raise ArchsmithError(
                f"irevnet: {len(blocks)} stages fold the input {stages} times by 2, so height "
                f"and width must be divisible by {fold}; got {h}x{w}"
            )
        if channels < 4 * c:
            raise ArchsmithError(
                f"irevnet.channels: injective padding only widens; need >= {4 * c} "
                f"(4 x {c} input channels after space-to-depth), got {channels}"
            )
        self.fold = SpaceToDepth(2, spatial_dims=2)
        self.pad = InjectivePad(channels - 4 * c, groups=2)
        couplings: list[Coupling] = []
        width = channels
        bottleneck = partial(
            IRevNetBottleneck, norm_layer=norm_layer, act_layer=act_layer, dropout=dropout
        )

        def hidden(out: int) -> int:
            return max(1, round(out * width_ratio))

        for stage, count in enumerate(blocks):
            if stage > 0 and downsampling == "fold":
                couplings.append(InvertibleDownsampling(2, spatial_dims=2))
            elif stage > 0:
                c1, c2 = part_sizes(width, 2)
                f = bottleneck(c2, 4 * c1, hidden(4 * c1), stride=2)
                g = bottleneck(4 * c1, 4 * c2, hidden(4 * c2))
                couplings.append(DownsamplingCoupling(f, g))
                count -= 1
            if stage > 0:
                width *= 4
            c1, c2 = part_sizes(width, 2)
            for _ in range(count):
                first = not couplings
                f = bottleneck(c2, c1, hidden(c1), first=first)
                g = bottleneck(c1, c2, hidden(c2))
                couplings.append(HookSafeAdditiveCoupling(f, g))
        self.trunk = ReversibleSequence(couplings, reversible=reversible)
        self.out_channels = width
        self.norm = get_layer("norm", norm_layer)(width)
        self.act = get_layer("act", act_layer)()
        self.head = nn.Linear(width, num_outputs)

    @property
    def reversible(self) -> bool:
        return self.trunk.reversible

    def features(self, x: Tensor) -> Tensor:
        """The invertible part: ``x: [B, C, H, W] -> [B, channels * 4**(S-1), H/2**S, W/2**S]``."""
        return self.trunk(self.pad(self.fold(x)))

    def inverse(self, y: Tensor) -> Tensor:
        """The input whose ``features`` are ``y`` (exact to rounding; run in eval mode, where
        normalization and dropout are deterministic)."""
        return self.fold.inverse(self.pad.inverse(self.trunk.inverse(y)))

    def forward(self, x: Tensor) -> Tensor:
        z = self.act(self.norm(self.features(x)))
        out: Tensor = self.head(z.mean(dim=(2, 3)))
        return out


@register_model(
    "irevnet",
    default_task="digits",
    inputs=("image",),
    task_kinds=("classification",),
    family="reversible",
)
def irevnet(
    in_shape: tuple[int, ...],
    num_outputs: int,
    channels: Annotated[int, Range(min=1)] = 16,
    blocks: tuple[Annotated[int, Range(min=1)], ...] = (2, 2),
    width_ratio: Annotated[float, Range(min=0.0, min_inclusive=False)] = 1.0,
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "batchnorm",
    act_layer: Annotated[LayerArg, LayerName("act")] = "relu",
    dropout: Annotated[float, Range(min=0.0, max=1.0, max_inclusive=False)] = 0.0,
    downsampling: Literal["strided", "fold"] = "strided",
    reversible: bool = True,
) -> nn.Module:
    """i-RevNet (Jacobsen et al., 2018): invertible downsampling, injective padding, couplings."""
    if len(in_shape) != 3:
        raise ArchsmithError(f"irevnet takes [C, H, W] images, got input shape {list(in_shape)}")
    c, h, w = in_shape
    return IRevNet(
        (c, h, w),
        num_outputs,
        channels,
        blocks,
        width_ratio=width_ratio,
        norm_layer=norm_layer,
        act_layer=act_layer,
        dropout=dropout,
        downsampling=downsampling,
        reversible=reversible,
    )
