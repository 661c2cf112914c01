"""Reversible blocks: inverted bottlenecks (2D and 3D) and Transformer layers as couplings.

- :class:`InvertedBottleneck` — MBConv (Sandler et al., "MobileNetV2", CVPR 2018): expand 1x1,
  depthwise ``k x k``, project 1x1, with norm and activation from the layer registry; ``dims=3``
  gives the 3D version of Pendse et al., "Memory Efficient 3D U-Net with Reversible Mobile
  Inverted Bottlenecks for Brain Tumor Segmentation" (BrainLes 2020).
- :func:`rev_mbconv` — two inverted bottlenecks as ``F`` and ``G`` of an additive coupling.
- :func:`rev_transformer_layer` — pre-norm attention as ``F`` and the MLP as ``G`` of an
  additive coupling on the features (``dim=-1``), as in the Reformer (Kitaev et al., ICLR 2020)
  and Reversible ViT (Mangalam et al., CVPR 2022).
- :class:`ReversibleTransformer` — a stack of those on ``[B, T, D]``: the input is duplicated
  into two streams ``[B, T, 2D]`` and the two output streams are averaged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from archsmith.errors import ArchsmithError
from archsmith.registry import LayerArg, get_layer
from archsmith.reversible.couplings import AdditiveCoupling, part_sizes
from archsmith.reversible.engine import ReversibleSequence

__all__ = [
    "InvertedBottleneck",
    "ReversibleTransformer",
    "rev_mbconv",
    "rev_transformer_layer",
]

_CONV: dict[int, type[nn.Conv2d] | type[nn.Conv3d]] = {2: nn.Conv2d, 3: nn.Conv3d}


class InvertedBottleneck(nn.Module):
    """``1x1 expand -> norm -> act -> k x k depthwise -> norm -> act -> [dropout] -> 1x1
    project -> norm`` (no activation after the projection: a linear bottleneck).

    Args:
        in_channels, out_channels: channels in and out.
        expand_ratio: hidden channels ``= round(in_channels * expand_ratio)`` (>= 1). Default 4.
        kernel_size: depthwise kernel, odd for same padding. Default 3.
        dims: 2 (``[B, C, H, W]``) or 3 (``[B, C, D, H, W]``). Default 2.
        norm_layer, act_layer: layer types (registry names, classes or factories). Convolutions
            have no bias when a normalization follows them.
        dropout: dropout before the projection. Default 0.

    Shapes: ``x: [B, in_channels, *S] -> [B, out_channels, *S]``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        expand_ratio: float = 4.0,
        kernel_size: int = 3,
        dims: int = 2,
        norm_layer: LayerArg = "batchnorm",
        act_layer: LayerArg = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dims not in _CONV:
            raise ArchsmithError(f"inverted bottleneck dims must be 2 or 3, got {dims}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ArchsmithError(f"inverted bottleneck kernel_size must be odd, got {kernel_size}")
        if expand_ratio <= 0:
            raise ArchsmithError(
                f"inverted bottleneck expand_ratio must be > 0, got {expand_ratio}"
            )
        conv = _CONV[dims]
        norm = get_layer("norm", norm_layer)
        act = get_layer("act", act_layer)
        hidden = max(1, round(in_channels * expand_ratio))
        norm1, norm2, norm3 = norm(hidden), norm(hidden), norm(out_channels)
        self.expand = conv(in_channels, hidden, 1, bias=isinstance(norm1, nn.Identity))
        self.norm1, self.act1 = norm1, act()
        self.depthwise = conv(
            hidden,
            hidden,
            kernel_size,
            padding=kernel_size // 2,
            groups=hidden,
            bias=isinstance(norm2, nn.Identity),
        )
        self.norm2, self.act2 = norm2, act()
        self.drop = _dropout(dropout)
        self.project = conv(hidden, out_channels, 1, bias=isinstance(norm3, nn.Identity))
        self.norm3 = norm3

    def forward(self, x: Tensor) -> Tensor:
        h = self.act1(self.norm1(self.expand(x)))  # [B, hidden, *S]
        h = self.act2(self.norm2(self.depthwise(h)))
        return self.norm3(self.project(self.drop(h)))  # [B, out_channels, *S]


def rev_mbconv(
    channels: int,
    *,
    expand_ratio: float = 4.0,
    kernel_size: int = 3,
    dims: int = 2,
    norm_layer: LayerArg = "batchnorm",
    act_layer: LayerArg = "relu",
    dropout: float = 0.0,
) -> AdditiveCoupling:
    """A reversible inverted bottleneck on ``[B, channels, *S]`` (``channels >= 2``, odd ones
    too): ``F`` maps the second part to the first, ``G`` the first to the second."""
    c1, c2 = part_sizes(channels, 2)
    options = {
        "expand_ratio": expand_ratio,
        "kernel_size": kernel_size,
        "dims": dims,
        "norm_layer": norm_layer,
        "act_layer": act_layer,
        "dropout": dropout,
    }
    return AdditiveCoupling(
        InvertedBottleneck(c2, c1, **options),  # type: ignore[arg-type]
        InvertedBottleneck(c1, c2, **options),  # type: ignore[arg-type]
    )


def _dropout(p: float) -> nn.Module:
    return nn.Dropout(p) if p > 0 else nn.Identity()


def rev_transformer_layer(
    dim: int,
    num_heads: int = 4,
    mlp_ratio: float = 4.0,
    *,
    attn_layer: LayerArg = "softmax",
    norm_layer: LayerArg = "layernorm",
    act_layer: LayerArg = "gelu",
    linear_layer: LayerArg = "dense",
    mlp_layer: LayerArg = "dense",
    causal: bool = False,
    dropout: float = 0.0,
) -> AdditiveCoupling:
    """A reversible Transformer layer on two streams ``[B, T, 2 * dim]``:
    ``y1 = x1 + attn(norm(x2))``, ``y2 = x2 + mlp(norm(y1))``."""
    if dim % num_heads:
        raise ArchsmithError(f"num_heads: width {dim} is not divisible by {num_heads} heads")
    norm = get_layer("norm", norm_layer)
    hidden = max(1, round(dim * mlp_ratio))
    f = nn.Sequential(
        norm(dim),
        get_layer("attn", attn_layer)(dim, num_heads, causal=causal, dropout=dropout),
        _dropout(dropout),
    )
    g = nn.Sequential(
        norm(dim),
        get_layer("mlp", mlp_layer)(dim, hidden, act_layer=act_layer, linear_layer=linear_layer),
        _dropout(dropout),
    )
    return AdditiveCoupling(f, g, dim=-1)


class ReversibleTransformer(nn.Module):
    """``depth`` reversible Transformer layers on ``x: [B, T, dim] -> [B, T, dim]``.

    The input is duplicated into two streams (``[B, T, 2 * dim]``), the layers run as a
    :class:`ReversibleSequence`, and the output streams are averaged. Options as
    :func:`rev_transformer_layer`; ``reversible=False`` is the plain-autograd twin.
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        *,
        reversible: bool = True,
        attn_layer: LayerArg = "softmax",
        norm_layer: LayerArg = "layernorm",
        act_layer: LayerArg = "gelu",
        linear_layer: LayerArg = "dense",
        mlp_layer: LayerArg = "dense",
        causal: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers = [
            rev_transformer_layer(
                dim,
                num_heads,
                mlp_ratio,
                attn_layer=attn_layer,
                norm_layer=norm_layer,
                act_layer=act_layer,
                linear_layer=linear_layer,
                mlp_layer=mlp_layer,
                causal=causal,
                dropout=dropout,
            )
            for _ in range(depth)
        ]
        self.layers = ReversibleSequence(layers, reversible=reversible)

    def forward(self, x: Tensor) -> Tensor:
        y = self.layers(torch.cat([x, x], dim=-1))  # [B, T, 2 * dim]
        y1, y2 = y.chunk(2, dim=-1)
        return 0.5 * (y1 + y2)  # [B, T, dim]
