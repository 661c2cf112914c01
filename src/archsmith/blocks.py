"""Built-in spec blocks: the vocabulary of ``{"blocks": [...]}`` architecture specs.

Each block factory receives ``in_shape`` (per-sample input shape) and its typed options; see
:func:`archsmith.registry.register_block`. Shapes below omit the batch dimension.

=============  ==========================================  =============================
block          options                                     shape
=============  ==========================================  =============================
flatten                                                    ``[*] -> [prod]``
linear         out_features, bias, linear_layer            ``[..., F] -> [..., out]``
act            layer                                       unchanged
norm           layer (features: dim 0 of images, else -1)  unchanged
dropout        p                                           unchanged
conv           out_channels, kernel_size, stride, ...      ``[C, H, W] -> [C', H', W']``
pool           kind (max/avg), size                        ``[C, H, W] -> [C, H/s, W/s]``
global_pool    kind (avg/max)                              ``[C, H, W]`` or ``[T, D] -> [C|D]``
embed          dim                                         any input ``-> [T, dim]``
transformer    num_heads, mlp_ratio, attn/norm/act/mlp      ``[T, D] -> [T, D]``
head                                                       ``-> [num_outputs]`` (or per token)
=============  ==========================================  =============================
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.models.cnn import ConvNormAct
from archsmith.models.transformer import SequenceEmbedding, TransformerBlock
from archsmith.options import LayerName, Range
from archsmith.registry import LayerArg, get_layer, register_block

__all__ = ["GlobalPool", "Head"]

Positive = Annotated[int, Range(min=1)]
Probability = Annotated[float, Range(min=0.0, max=1.0, max_inclusive=False)]


@register_block("flatten")
def flatten(in_shape: tuple[int, ...]) -> nn.Module:
    """Flatten all per-sample dimensions."""
    return nn.Flatten()


@register_block("linear")
def linear(
    in_shape: tuple[int, ...],
    out_features: Positive,
    bias: bool = True,
    linear_layer: Annotated[LayerArg, LayerName("linear")] = "dense",
) -> nn.Module:
    """A linear layer on the last dimension."""
    return get_layer("linear", linear_layer)(in_shape[-1], out_features, bias=bias)


@register_block("act")
def act(
    in_shape: tuple[int, ...], layer: Annotated[LayerArg, LayerName("act")] = "relu"
) -> nn.Module:
    """An activation."""
    return get_layer("act", layer)()


@register_block("norm")
def norm(
    in_shape: tuple[int, ...], layer: Annotated[LayerArg, LayerName("norm")] = "layernorm"
) -> nn.Module:
    """A normalization over the channels of an image (dim 0) or the last dim otherwise."""
    features = in_shape[0] if len(in_shape) == 3 else in_shape[-1]
    return get_layer("norm", layer)(features)


@register_block("dropout")
def dropout(in_shape: tuple[int, ...], p: Probability = 0.1) -> nn.Module:
    """Dropout with probability ``p``."""
    return nn.Dropout(p)


def _image_shape(in_shape: tuple[int, ...], block: str) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise ArchsmithError(f"{block} needs an image input [C, H, W], got shape {list(in_shape)}")
    c, h, w = in_shape
    return c, h, w


@register_block("conv")
def conv(
    in_shape: tuple[int, ...],
    out_channels: Positive,
    kernel_size: Positive = 3,
    stride: Positive = 1,
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "batchnorm",
    act_layer: Annotated[LayerArg, LayerName("act")] = "relu",
) -> nn.Module:
    """Convolution (same padding) -> norm -> activation."""
    c, _, _ = _image_shape(in_shape, "conv")
    return ConvNormAct(
        c, out_channels, kernel_size, stride, norm_layer=norm_layer, act_layer=act_layer
    )


@register_block("pool")
def pool(
    in_shape: tuple[int, ...], kind: Literal["max", "avg"] = "max", size: Positive = 2
) -> nn.Module:
    """Spatial max or average pooling with window and stride ``size``."""
    _, h, w = _image_shape(in_shape, "pool")
    if size > min(h, w):
        raise ArchsmithError(f"pool size {size} is larger than the {h}x{w} input")
    return nn.MaxPool2d(size) if kind == "max" else nn.AvgPool2d(size)


class GlobalPool(nn.Module):
    """Average or max over all positions: ``[B, C, H, W] -> [B, C]``, ``[B, T, D] -> [B, D]``."""

    def __init__(self, kind: str, channels_first: bool):
        super().__init__()
        self.kind, self.channels_first = kind, channels_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2) if self.channels_first else x.transpose(1, 2)  # [B, C, positions]
        return x.mean(-1) if self.kind == "avg" else x.amax(-1)


@register_block("global_pool")
def global_pool(in_shape: tuple[int, ...], kind: Literal["avg", "max"] = "avg") -> nn.Module:
    """Pool over all spatial positions or tokens."""
    if len(in_shape) not in (2, 3):
        raise ArchsmithError(f"global_pool needs [C, H, W] or [T, D], got shape {list(in_shape)}")
    return GlobalPool(kind, channels_first=len(in_shape) == 3)


@register_block("embed")
def embed(
    in_shape: tuple[int, ...], dim: Positive = 64, vocab_size: int | None = None
) -> nn.Module:
    """Token, image-row or per-feature embedding with learned positions: ``-> [T, dim]``."""
    if vocab_size is None and len(in_shape) not in (1, 3):
        raise ArchsmithError(f"embed needs tokens, [C, H, W] or [F], got shape {list(in_shape)}")
    return SequenceEmbedding(in_shape, dim, vocab_size)


@register_block("transformer")
def transformer_block(
    in_shape: tuple[int, ...],
    num_heads: Positive = 4,
    mlp_ratio: Annotated[float, Range(min=0.0, min_inclusive=False)] = 4.0,
    causal: bool | None = None,
    dropout: Probability = 0.0,
    per_position: bool = False,
    attn_layer: Annotated[LayerArg, LayerName("attn")] = "softmax",
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "layernorm",
    act_layer: Annotated[LayerArg, LayerName("act")] = "gelu",
    linear_layer: Annotated[LayerArg, LayerName("linear")] = "dense",
    mlp_layer: Annotated[LayerArg, LayerName("mlp")] = "dense",
) -> nn.Module:
    """A pre-norm Transformer block (causal by default on next-token tasks)."""
    if len(in_shape) != 2:
        raise ArchsmithError(
            f"transformer needs a token sequence [T, D] (add an 'embed' block), got {list(in_shape)}"
        )
    dim = in_shape[1]
    if dim % num_heads:
        raise ArchsmithError(f"num_heads: width {dim} is not divisible by {num_heads} heads")
    return TransformerBlock(
        dim,
        num_heads,
        mlp_ratio,
        attn_layer=attn_layer,
        norm_layer=norm_layer,
        act_layer=act_layer,
        linear_layer=linear_layer,
        mlp_layer=mlp_layer,
        causal=per_position if causal is None else causal,
        dropout=dropout,
    )


class Head(nn.Module):
    """Linear output layer; pools first when the task wants one output per sample.

    ``[B, F] -> [B, K]``; ``[B, C, H, W]`` or ``[B, T, D]`` -> global average -> ``[B, K]``;
    with ``per_position``: ``[B, T, D] -> [B, T, K]``.
    """

    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, per_position: bool):
        super().__init__()
        self.pool: nn.Module = nn.Identity()
        if per_position:
            if len(in_shape) != 2:
                raise ArchsmithError(f"head: a per-token task needs [T, D], got {list(in_shape)}")
        elif len(in_shape) in (2, 3):
            self.pool = GlobalPool("avg", channels_first=len(in_shape) == 3)
        elif len(in_shape) != 1:
            raise ArchsmithError(f"head: cannot take input of shape {list(in_shape)}")
        features = in_shape[0] if (len(in_shape) == 3 and not per_position) else in_shape[-1]
        self.linear = nn.Linear(features, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.pool(x))


@register_block("head")
def head(in_shape: tuple[int, ...], num_outputs: int, per_position: bool = False) -> nn.Module:
    """The task's output layer (added automatically when a spec does not end with one)."""
    return Head(in_shape, num_outputs, per_position)
