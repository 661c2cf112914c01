"""RevCol: a multi-column network whose columns are joined by reversible connections.

Cai, Zhou, Hu, Zhang, Zhang & Zhang, "Reversible Column Networks", ICLR 2023. Each column is
a small multi-level network (levels at halving resolutions); level ``l`` of column ``c`` fuses
the level below it in the same column and the level above it in the previous column, and adds
the same level of the previous column scaled by a non-zero ``gamma`` (eq. 4)::

    x_l^c = F_l(x_{l-1}^c, x_{l+1}^{c-1}) + gamma_l * x_l^{c-1}

so every column is an invertible function of the previous one, given ``x_0`` (the stem output).
Training keeps only the last column: earlier ones are rebuilt in the backward pass (see
:mod:`archsmith.reversible.revcol_function`). The top level of the last column feeds the
classifier. ``reversible=False`` is the autograd twin on the same weights.

``F_l``: downsample ``x_{l-1}^c`` (2x2 stride-2 convolution + norm; a 1x1 convolution for the
first level, which keeps the stem's resolution), add the upsampled ``x_{l+1}^{c-1}`` (1x1
convolution + norm, nearest-neighbour upsampling; the paper's fusion unit), then ``blocks``
ConvNeXt-style residual blocks (depthwise 3x3, norm, 1x1 expand, activation, 1x1 project).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsmith.errors import ArchsmithError
from archsmith.options import LayerName, Range
from archsmith.registry import LayerArg, get_layer, register_model
from archsmith.reversible.revcol_function import plain_columns, reversible_columns

__all__ = ["RevCol", "RevColBlock", "RevColColumn", "RevColFusion", "revcol"]


def _no_norm(norm: nn.Module) -> bool:
    return isinstance(norm, nn.Identity)


class RevColBlock(nn.Module):
    """ConvNeXt-style residual block: ``x + W2 act(W1 norm(dwconv3x3(x)))``; ``[B, C, H, W]``
    to the same shape."""

    def __init__(
        self,
        channels: int,
        *,
        expansion: int = 2,
        norm_layer: LayerArg = "batchnorm",
        act_layer: LayerArg = "gelu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm = get_layer("norm", norm_layer)(channels)
        # no bias before a norm: its shift replaces it (and a bias BatchNorm cancels gets a
        # gradient of pure rounding noise)
        self.dwconv = nn.Conv2d(
            channels, channels, 3, padding=1, groups=channels, bias=_no_norm(self.norm)
        )
        self.expand = nn.Conv2d(channels, channels * expansion, 1)
        self.act = get_layer("act", act_layer)()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.project = nn.Conv2d(channels * expansion, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.expand(self.norm(self.dwconv(x))))
        return x + self.project(self.drop(h))


class RevColFusion(nn.Module):
    """``F_l``: ``lower: [B, C_{l-1}, H, W]`` (and ``higher: [B, C_{l+1}, H', W']`` or None)
    to ``[B, C_l, H / s, W / s]`` (``s = 2``, or 1 for the first level)."""

    def __init__(
        self,
        lower_channels: int,
        channels: int,
        higher_channels: int | None,
        *,
        stride: int,
        blocks: int,
        norm_layer: LayerArg,
        act_layer: LayerArg,
        dropout: float,
    ) -> None:
        super().__init__()
        norm = get_layer("norm", norm_layer)
        down_norm = norm(channels)
        self.down = nn.Sequential(
            nn.Conv2d(lower_channels, channels, stride, stride=stride, bias=_no_norm(down_norm)),
            down_norm,
        )
        self.up: nn.Module | None = None
        if higher_channels is not None:
            up_norm = norm(channels)
            self.up = nn.Sequential(
                nn.Conv2d(higher_channels, channels, 1, bias=_no_norm(up_norm)), up_norm
            )
        self.blocks = nn.Sequential(
            *(
                RevColBlock(channels, norm_layer=norm_layer, act_layer=act_layer, dropout=dropout)
                for _ in range(blocks)
            )
        )

    def forward(self, lower: Tensor, higher: Tensor | None = None) -> Tensor:
        h = self.down(lower)
        if higher is not None:
            if self.up is None:
                raise ArchsmithError("the top RevCol level takes no input from a higher level")
            h = h + F.interpolate(self.up(higher), size=h.shape[-2:], mode="nearest")
        out: Tensor = self.blocks(h)
        return out


class RevColColumn(nn.Module):
    """One column: ``x0: [B, C_0, H, W]`` and the previous column's ``[x_1 .. x_L]`` (or None)
    to this column's ``[x_1 .. x_L]``, ``x_l: [B, C_l, H / 2^(l-1), W / 2^(l-1)]``.

    ``gamma_l = gamma_min + softplus(raw_l)`` per channel: positive, never below ``gamma_min``,
    so the reversible connection always inverts. The first column (``first=True``) reads no
    previous column, so it has neither ``gamma`` nor up-projections.
    """

    def __init__(
        self,
        stem_channels: int,
        channels: Sequence[int],
        *,
        blocks: int,
        norm_layer: LayerArg,
        act_layer: LayerArg,
        dropout: float,
        gamma_init: float = 1.0,
        gamma_min: float = 1e-3,
        first: bool = False,
    ) -> None:
        super().__init__()
        if gamma_init <= gamma_min:
            raise ArchsmithError(f"RevCol gamma_init must exceed {gamma_min}, got {gamma_init}")
        self.num_levels = len(channels)
        self.gamma_min = gamma_min
        lowers = [stem_channels, *channels[:-1]]
        highers: list[int | None] = [None] * len(channels) if first else [*channels[1:], None]
        self.fusions = nn.ModuleList(
            RevColFusion(
                lo,
                c,
                hi,
                stride=1 if level == 0 else 2,
                blocks=blocks,
                norm_layer=norm_layer,
                act_layer=act_layer,
                dropout=dropout,
            )
            for level, (lo, c, hi) in enumerate(zip(lowers, channels, highers, strict=True))
        )
        raw = math.log(math.expm1(gamma_init - gamma_min))  # softplus^-1
        self.gamma_raw = nn.ParameterList(
            [] if first else [nn.Parameter(torch.full((1, c, 1, 1), raw)) for c in channels]
        )

    def fusion(self, level: int, lower: Tensor, higher: Tensor | None) -> Tensor:
        out: Tensor = self.fusions[level](lower, higher)
        return out

    def gamma(self, level: int) -> Tensor:
        if not len(self.gamma_raw):
            raise ArchsmithError("the first RevCol column has no reversible connection (gamma)")
        return self.gamma_min + F.softplus(self.gamma_raw[level])

    def level_parameters(self, level: int) -> list[nn.Parameter]:
        gamma = [self.gamma_raw[level]] if len(self.gamma_raw) else []
        return [*self.fusions[level].parameters(), *gamma]


class RevCol(nn.Module):
    """Stem, ``columns`` reversible columns, and a classifier on the last column's top level.

    Shapes: ``x: [B, C_in, H, W] -> [B, num_outputs]``.

    Args:
        in_channels: input channels.
        num_outputs: classes.
        channels: per-level widths ``C_1 .. C_L`` (level ``l`` at resolution ``H / 2^(l-1)``).
        columns: number of columns.
        blocks: residual blocks in each ``F_l``.
        stem_channels: width ``C_0`` of the stem (3x3 convolution, norm, activation).
        reversible: keep only the last column (True) or every activation (False, the twin).
    """

    def __init__(
        self,
        in_channels: int,
        num_outputs: int,
        channels: Sequence[int] = (16, 32, 64),
        *,
        columns: int = 3,
        blocks: int = 1,
        stem_channels: int = 16,
        norm_layer: LayerArg = "batchnorm",
        act_layer: LayerArg = "gelu",
        dropout: float = 0.0,
        gamma_init: float = 1.0,
        reversible: bool = True,
    ) -> None:
        super().__init__()
        if columns < 1 or not channels:
            raise ArchsmithError("RevCol needs at least one column and one level")
        norm = get_layer("norm", norm_layer)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem_channels, 3, padding=1, bias=False),
            norm(stem_channels),
            get_layer("act", act_layer)(),
        )
        self.columns = nn.ModuleList(
            RevColColumn(
                stem_channels,
                channels,
                blocks=blocks,
                norm_layer=norm_layer,
                act_layer=act_layer,
                dropout=dropout,
                gamma_init=gamma_init,
                first=c == 0,
            )
            for c in range(columns)
        )
        self.norm = norm(channels[-1])
        self.head = nn.Linear(channels[-1], num_outputs)
        self.reversible = reversible

    def features(self, x: Tensor) -> list[Tensor]:
        """The last column's levels ``[x_1 .. x_L]`` for ``x: [B, C_in, H, W]``."""
        x0 = self.stem(x)
        cols = list(self.columns)
        if self.reversible:
            # trainable ones only: frozen parameters get no gradient, as in the twin
            params = [p for p in self.columns.parameters() if p.requires_grad]
            return reversible_columns(cols, x0, params)  # type: ignore[arg-type]
        return plain_columns(cols, x0)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        top = self.norm(self.features(x)[-1])
        out: Tensor = self.head(top.mean(dim=(2, 3)))
        return out


@register_model(
    "revcol",
    default_task="digits",
    inputs=("image",),
    task_kinds=("classification",),
    family="reversible",
)
def revcol(
    in_shape: tuple[int, ...],
    num_outputs: int,
    channels: tuple[Annotated[int, Range(min=1)], ...] = (16, 32, 64),
    columns: Annotated[int, Range(min=1)] = 3,
    blocks: Annotated[int, Range(min=1)] = 1,
    stem_channels: Annotated[int, Range(min=1)] = 16,
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "batchnorm",
    act_layer: Annotated[LayerArg, LayerName("act")] = "gelu",
    dropout: Annotated[float, Range(min=0.0, max=1.0, max_inclusive=False)] = 0.0,
    gamma_init: Annotated[float, Range(min=0.01)] = 1.0,
    reversible: bool = True,
) -> nn.Module:
    """RevCol (Cai et al., 2023): columns joined by reversible connections; memory flat in columns."""
    if len(in_shape) != 3:
        raise ArchsmithError(f"revcol takes [C, H, W] images, got input shape {list(in_shape)}")
    if not channels:
        raise ArchsmithError("revcol.channels: give at least one level width")
    return RevCol(
        in_shape[0],
        num_outputs,
        channels,
        columns=columns,
        blocks=blocks,
        stem_channels=stem_channels,
        norm_layer=norm_layer,
        act_layer=act_layer,
        dropout=dropout,
        gamma_init=gamma_init,
        reversible=reversible,
    )
