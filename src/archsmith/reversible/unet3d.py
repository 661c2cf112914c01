"""A small reversible 3D U-Net for volume segmentation.

Pendse, Thangarasa, Chiley, Holmdahl, Hestness & DeCoste, "Memory Efficient 3D U-Net with
Reversible Mobile Inverted Bottlenecks for Brain Tumor Segmentation", BrainLes 2020. Every
resolution level of the encoder and the decoder runs a stack of reversible inverted bottlenecks
(MBConv-3D as ``F`` and ``G`` of an additive coupling) through the engine, so a level keeps only
its output however deep it is; the downsampling, the upsampling and the skip connections are
ordinary layers, as in the paper.

Layout, for ``channels = (c_0 .. c_{L-1})`` and ``blocks`` couplings per level::

    stem      conv3x3x3 1 -> c_0, norm, act                                   [B, c_0, S, S, S]
    encoder   level i: reversible stage (blocks x MBConv coupling on c_i); skip_i = its output;
              then conv 2x2x2 stride 2 c_i -> c_{i+1}, norm, act                 (i < L - 1)
    bottom    reversible stage on c_{L-1} at S / 2^(L-1)
    decoder   level i = L-2 .. 0: transposed conv 2x2x2 stride 2 c_{i+1} -> c_i, concatenate
              skip_i, conv1x1x1 2c_i -> c_i, norm, act, reversible stage on c_i
    head      conv1x1x1 c_0 -> num_classes                                    [B, K, S, S, S]

``reversible=False`` gives the autograd twin on the same weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import torch
from torch import Tensor, nn

from archsmith.errors import ArchsmithError
from archsmith.options import LayerName, Range
from archsmith.registry import LayerArg, get_layer, register_model
from archsmith.reversible.blocks import InvertedBottleneck
from archsmith.reversible.couplings import Coupling, part_sizes
from archsmith.reversible.engine import ReversibleSequence, set_reversible
from archsmith.reversible.invertible_ops import HookSafeAdditiveCoupling

__all__ = ["RevUNet3D", "rev_mbconv3d_stage", "rev_unet3d"]


def rev_mbconv3d_stage(
    channels: int,
    blocks: int,
    *,
    expand_ratio: float = 2.0,
    kernel_size: int = 3,
    norm_layer: LayerArg = "batchnorm",
    act_layer: LayerArg = "silu",
    dropout: float = 0.0,
    reversible: bool = True,
) -> ReversibleSequence:
    """``blocks`` reversible MBConv-3D couplings on ``[B, channels, D, H, W]`` (same shape out)."""
    if channels < 2:
        raise ArchsmithError(
            f"a reversible stage splits channels in two; need >= 2, got {channels}"
        )
    c1, c2 = part_sizes(channels, 2)
    options = {
        "expand_ratio": expand_ratio,
        "kernel_size": kernel_size,
        "dims": 3,
        "norm_layer": norm_layer,
        "act_layer": act_layer,
        "dropout": dropout,
    }
    couplings: list[Coupling] = [
        HookSafeAdditiveCoupling(
            InvertedBottleneck(c2, c1, **options),  # type: ignore[arg-type]
            InvertedBottleneck(c1, c2, **options),  # type: ignore[arg-type]
        )
        for _ in range(blocks)
    ]
    return ReversibleSequence(couplings, reversible=reversible)


class _ConvNormAct3d(nn.Sequential):
    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, norm_layer: LayerArg, act: LayerArg
    ) -> None:
        norm = get_layer("norm", norm_layer)(cout)
        pad = kernel // 2 if stride == 1 else 0
        conv = nn.Conv3d(
            cin, cout, kernel, stride=stride, padding=pad, bias=isinstance(norm, nn.Identity)
        )
        super().__init__(conv, norm, get_layer("act", act)())


class RevUNet3D(nn.Module):
    """Reversible 3D U-Net: ``x: [B, C_in, D, H, W] -> logits [B, num_classes, D, H, W]``,
    ``D``, ``H``, ``W`` divisible by ``2 ** (len(channels) - 1)``.

    Args:
        in_channels: input channels.
        num_classes: output channels (classes per voxel).
        channels: widths of the resolution levels, finest first (each >= 2).
        blocks: reversible MBConv couplings per level (encoder and decoder alike).
        expand_ratio: MBConv expansion (hidden = ``expand_ratio`` x the half it reads).
        reversible: memory-saving stages (True) or plain autograd (False, the twin).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: Sequence[int] = (8, 16, 32),
        *,
        blocks: int = 1,
        expand_ratio: float = 2.0,
        kernel_size: int = 3,
        norm_layer: LayerArg = "batchnorm",
        act_layer: LayerArg = "silu",
        dropout: float = 0.0,
        reversible: bool = True,
    ) -> None:
        super().__init__()
        if not channels or blocks < 1:
            raise ArchsmithError("rev_unet3d needs at least one level and one block per level")
        levels = len(channels)
        self.factor = 2 ** (levels - 1)

        def stage(c: int) -> ReversibleSequence:
            return rev_mbconv3d_stage(
                c,
                blocks,
                expand_ratio=expand_ratio,
                kernel_size=kernel_size,
                norm_layer=norm_layer,
                act_layer=act_layer,
                dropout=dropout,
                reversible=reversible,
            )

        self.stem = _ConvNormAct3d(in_channels, channels[0], 3, 1, norm_layer, act_layer)
        self.encoder = nn.ModuleList(stage(c) for c in channels)
        self.down = nn.ModuleList(
            _ConvNormAct3d(channels[i], channels[i + 1], 2, 2, norm_layer, act_layer)
            for i in range(levels - 1)
        )
        self.up = nn.ModuleList(
            nn.ConvTranspose3d(channels[i + 1], channels[i], 2, stride=2) for i in range(levels - 1)
        )
        self.merge = nn.ModuleList(
            _ConvNormAct3d(2 * channels[i], channels[i], 1, 1, norm_layer, act_layer)
            for i in range(levels - 1)
        )
        self.decoder = nn.ModuleList(stage(c) for c in channels[:-1])
        self.head = nn.Conv3d(channels[0], num_classes, 1)

    @property
    def reversible(self) -> bool:
        return all(m.reversible for m in self.modules() if isinstance(m, ReversibleSequence))

    @reversible.setter
    def reversible(self, value: bool) -> None:
        set_reversible(self, value)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 5 or any(s % self.factor for s in x.shape[2:]):
            raise ArchsmithError(
                f"rev_unet3d expects [B, C, D, H, W] with D, H, W divisible by {self.factor}, "
                f"got shape {list(x.shape)}"
            )
        h = self.stem(x)
        skips: list[Tensor] = []
        for i, stage in enumerate(self.encoder):
            h = stage(h)
            if i < len(self.down):
                skips.append(h)
                h = self.down[i](h)
        for i in reversed(range(len(self.decoder))):
            h = self.merge[i](torch.cat([self.up[i](h), skips[i]], dim=1))
            h = self.decoder[i](h)
        out: Tensor = self.head(h)
        return out


@register_model(
    "rev_unet3d",
    default_task="spheres3d",
    inputs=("image",),
    task_kinds=("segmentation",),
    family="reversible",
)
def rev_unet3d(
    in_shape: tuple[int, ...],
    num_outputs: int,
    channels: tuple[Annotated[int, Range(min=2)], ...] = (8, 16, 32),
    blocks: Annotated[int, Range(min=1)] = 1,
    expand_ratio: Annotated[float, Range(min=0.0, min_inclusive=False)] = 2.0,
    kernel_size: Annotated[int, Range(min=1)] = 3,
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "batchnorm",
    act_layer: Annotated[LayerArg, LayerName("act")] = "silu",
    dropout: Annotated[float, Range(min=0.0, max=1.0, max_inclusive=False)] = 0.0,
    reversible: bool = True,
) -> nn.Module:
    """Reversible 3D U-Net (Pendse et al., 2020): reversible MBConv-3D stages at every level."""
    if len(in_shape) != 4:
        raise ArchsmithError(
            f"rev_unet3d takes [C, D, H, W] volumes, got input shape {list(in_shape)}"
        )
    if not channels:
        raise ArchsmithError("rev_unet3d.channels: give at least one level width")
    factor = 2 ** (len(channels) - 1)
    if any(s % factor for s in in_shape[1:]):
        raise ArchsmithError(
            f"rev_unet3d: {len(channels)} levels halve the volume {len(channels) - 1} times, so "
            f"its sides must be divisible by {factor}; got {list(in_shape[1:])}"
        )
    return RevUNet3D(
        in_shape[0],
        num_outputs,
        channels,
        blocks=blocks,
        expand_ratio=expand_ratio,
        kernel_size=kernel_size,
        norm_layer=norm_layer,
        act_layer=act_layer,
        dropout=dropout,
        reversible=reversible,
    )
