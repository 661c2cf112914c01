"""Small convolutional network baseline for image tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import torch
from torch import nn

from archsmith.options import LayerName, Range
from archsmith.registry import LayerArg, get_layer, register_model

__all__ = ["ConvNormAct", "SmallCNN", "cnn"]


class ConvNormAct(nn.Sequential):
    """``conv(k x k, same padding) -> norm -> act`` on ``[B, C_in, H, W] -> [B, C_out, H/s, W/s]``.

    The convolution has no bias when a normalization follows (the norm's shift replaces it).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        norm_layer: LayerArg = "batchnorm",
        act_layer: LayerArg = "relu",
    ) -> None:
        norm = get_layer("norm", norm_layer)(out_channels)
        conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=isinstance(norm, nn.Identity),
        )
        super().__init__(conv, norm, get_layer("act", act_layer)())


class SmallCNN(nn.Module):
    """Stages of ``ConvNormAct`` each followed by 2x2 max-pooling (while the map is >= 2x2),
    then global average pooling and a linear head.

    Shapes: ``x: [B, C, H, W] -> [B, num_outputs]``.
    """

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int],
        num_outputs: int,
        channels: Sequence[int] = (32, 64),
        *,
        kernel_size: int = 3,
        norm_layer: LayerArg = "batchnorm",
        act_layer: LayerArg = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c, (h, w) = in_channels, image_size
        for out in channels:
            layers.append(
                ConvNormAct(c, out, kernel_size, norm_layer=norm_layer, act_layer=act_layer)
            )
            if min(h, w) >= 2:
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            c = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(c, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)  # [B, C]
        return self.head(self.dropout(x))


@register_model("cnn", default_task="digits", inputs=("image",))
def cnn(
    in_shape: tuple[int, ...],
    num_outputs: int,
    channels: tuple[Annotated[int, Range(min=1)], ...] = (32, 64),
    kernel_size: Annotated[int, Range(min=1)] = 3,
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "batchnorm",
    act_layer: Annotated[LayerArg, LayerName("act")] = "relu",
    dropout: Annotated[float, Range(min=0.0, max=1.0, max_inclusive=False)] = 0.0,
) -> nn.Module:
    """Small CNN: conv-norm-act stages with max-pooling, global pooling, linear head."""
    c, h, w = in_shape
    return SmallCNN(
        c,
        (h, w),
        num_outputs,
        channels,
        kernel_size=kernel_size,
        norm_layer=norm_layer,
        act_layer=act_layer,
        dropout=dropout,
    )
