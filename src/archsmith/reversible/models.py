"""Registered reversible models and spec blocks.

Models (``family="reversible"``; each has ``reversible: bool = True``, and ``reversible=False``
builds the plain-autograd twin: same layers, same initialisation for the same seed):

- ``rev_cnn`` — a reversible MBConv CNN for images (digits): a stem convolution, stages of
  reversible inverted bottlenecks (:func:`~archsmith.reversible.blocks.rev_mbconv`) with a
  non-reversible strided convolution between stages (as RevNet downsamples, Gomez et al. 2017),
  global pooling and a linear head.
- ``rev_transformer`` — the :class:`~archsmith.models.transformer.Transformer` builder (the
  embedding, final norm and head of the ``transformer`` baseline) with the reversible stack
  :class:`~archsmith.reversible.blocks.ReversibleTransformer` passed in as its ``stack_layer``,
  for mqar, selective copy, digits and feature vectors.

Spec blocks: ``rev_mbconv`` (``[C, H, W]`` or ``[C, D, H, W]`` in and out) and
``rev_transformer`` (``[T, D]`` in and out), each a whole reversible stack of ``depth`` layers,
so its memory stays flat in ``depth``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Annotated, Any

from torch import Tensor, nn

from archsmith.errors import ArchsmithError
from archsmith.models.cnn import ConvNormAct
from archsmith.models.transformer import Transformer
from archsmith.options import LayerName, Range
from archsmith.registry import LayerArg, register_block, register_model
from archsmith.reversible.blocks import ReversibleTransformer, rev_mbconv
from archsmith.reversible.engine import ReversibleSequence

__all__ = ["RevCNN", "RevTransformer", "rev_cnn", "rev_transformer"]

Positive = Annotated[int, Range(min=1)]
Probability = Annotated[float, Range(min=0.0, max=1.0, max_inclusive=False)]
Ratio = Annotated[float, Range(min=0.0, min_inclusive=False)]
OddKernel = Annotated[int, Range(min=1)]


def _mbconv_stack(
    channels: int,
    depth: int,
    *,
    dims: int,
    expand_ratio: float,
    kernel_size: int,
    norm_layer: LayerArg,
    act_layer: LayerArg,
    dropout: float,
    reversible: bool,
) -> ReversibleSequence:
    if channels < 2:
        raise ArchsmithError(f"a reversible stage needs >= 2 channels to split, got {channels}")
    couplings = [
        rev_mbconv(
            channels,
            expand_ratio=expand_ratio,
            kernel_size=kernel_size,
            dims=dims,
            norm_layer=norm_layer,
            act_layer=act_layer,
            dropout=dropout,
        )
        for _ in range(depth)
    ]
    return ReversibleSequence(couplings, reversible=reversible)


class RevCNN(nn.Module):
    """Stem, reversible MBConv stages with strided-conv downsampling between them, head.

    Shapes: ``x: [B, C, H, W] -> [B, num_outputs]``. A stage at a map smaller than 2x2 keeps
    its size (the downsampling convolution then has stride 1).
    """

    def __init__(
        self,
        in_channels: int,
        image_size: tuple[int, int],
        num_outputs: int,
        channels: Sequence[int] = (16, 32),
        depths: Sequence[int] = (2, 2),
        *,
        expand_ratio: float = 4.0,
        kernel_size: int = 3,
        norm_layer: LayerArg = "batchnorm",
        act_layer: LayerArg = "relu",
        dropout: float = 0.0,
        reversible: bool = True,
    ) -> None:
        super().__init__()
        if len(channels) != len(depths):
            raise ArchsmithError(
                f"options.depths: {len(depths)} stage depths for {len(channels)} stage widths"
            )
        h, w = image_size
        self.stem = ConvNormAct(
            in_channels, channels[0], 3, norm_layer=norm_layer, act_layer=act_layer
        )
        layers: list[nn.Module] = []
        for s, (c, depth) in enumerate(zip(channels, depths, strict=True)):
            if s > 0:
                stride = 2 if min(h, w) >= 2 else 1
                layers.append(
                    ConvNormAct(
                        channels[s - 1],
                        c,
                        3,
                        stride,
                        norm_layer=norm_layer,
                        act_layer=act_layer,
                    )
                )
                h, w = (h + 1) // stride, (w + 1) // stride
            layers.append(
                _mbconv_stack(
                    c,
                    depth,
                    dims=2,
                    expand_ratio=expand_ratio,
                    kernel_size=kernel_size,
                    norm_layer=norm_layer,
                    act_layer=act_layer,
                    dropout=dropout,
                    reversible=reversible,
                )
            )
        self.stages = nn.Sequential(*layers)
        self.head = nn.Linear(channels[-1], num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        h = self.stages(self.stem(x))  # [B, C_last, H', W']
        return self.head(h.mean(dim=(2, 3)))


@register_model("rev_cnn", default_task="digits", inputs=("image",), family="reversible")
def rev_cnn(
    in_shape: tuple[int, ...],
    num_outputs: int,
    channels: tuple[Annotated[int, Range(min=2)], ...] = (16, 32),
    depths: tuple[Positive, ...] = (2, 2),
    expand_ratio: Ratio = 4.0,
    kernel_size: OddKernel = 3,
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "batchnorm",
    act_layer: Annotated[LayerArg, LayerName("act")] = "relu",
    dropout: Probability = 0.0,
    reversible: bool = True,
) -> nn.Module:
    """Reversible MBConv CNN (RevNet-style stages of inverted bottlenecks)."""
    if len(in_shape) != 3:
        raise ArchsmithError(f"rev_cnn needs images [C, H, W], got shape {list(in_shape)}")
    if kernel_size % 2 == 0:
        raise ArchsmithError(f"options.kernel_size: must be odd, got {kernel_size}")
    c, h, w = in_shape
    return RevCNN(
        c,
        (h, w),
        num_outputs,
        channels,
        depths,
        expand_ratio=expand_ratio,
        kernel_size=kernel_size,
        norm_layer=norm_layer,
        act_layer=act_layer,
        dropout=dropout,
        reversible=reversible,
    )


class RevTransformer(Transformer):
    """The :class:`~archsmith.models.transformer.Transformer` builder with a
    :class:`ReversibleTransformer` as its stack: two streams ``[B, T, 2 * dim]``, training
    memory flat in ``depth``; ``reversible=False`` is the plain-autograd twin (same layers, same
    initialisation for the same seed).

    Other options and shapes as the builder: ``[B, num_outputs]``, or ``[B, T, num_outputs]``
    with ``per_position``.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_outputs: int,
        *,
        reversible: bool = True,
        **options: Any,
    ) -> None:
        stack = functools.partial(ReversibleTransformer, reversible=reversible)
        super().__init__(in_shape, num_outputs, stack_layer=stack, **options)


@register_model(
    "rev_transformer",
    default_task="mqar",
    inputs=("tokens", "image", "vector"),
    task_kinds=("classification", "regression", "sequence"),
    family="reversible",
)
def rev_transformer(
    in_shape: tuple[int, ...],
    num_outputs: int,
    vocab_size: int | None = None,
    per_position: bool = False,
    dim: Positive = 64,
    depth: Positive = 2,
    num_heads: Positive = 4,
    mlp_ratio: Ratio = 4.0,
    causal: bool | None = None,
    dropout: Probability = 0.0,
    attn_layer: Annotated[LayerArg, LayerName("attn")] = "softmax",
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "layernorm",
    act_layer: Annotated[LayerArg, LayerName("act")] = "gelu",
    linear_layer: Annotated[LayerArg, LayerName("linear")] = "dense",
    mlp_layer: Annotated[LayerArg, LayerName("mlp")] = "dense",
    reversible: bool = True,
) -> nn.Module:
    """Reversible Transformer (Reformer-style: attention as F, MLP as G, two streams).

    Options as the ``transformer`` baseline, plus ``reversible`` (``False``: the autograd twin).
    """
    # each option is the builder's keyword of the same name; first thing in the body, locals()
    # holds exactly the options
    return RevTransformer(**locals())


# ----------------------------------------------------------------------------------------------
# spec blocks


@register_block("rev_mbconv")
def rev_mbconv_block(
    in_shape: tuple[int, ...],
    depth: Positive = 2,
    expand_ratio: Ratio = 4.0,
    kernel_size: OddKernel = 3,
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "batchnorm",
    act_layer: Annotated[LayerArg, LayerName("act")] = "relu",
    dropout: Probability = 0.0,
    reversible: bool = True,
) -> nn.Module:
    """A reversible stack of ``depth`` inverted bottlenecks (2D or 3D): shape unchanged."""
    if len(in_shape) not in (3, 4):
        raise ArchsmithError(
            f"rev_mbconv needs [C, H, W] or [C, D, H, W], got shape {list(in_shape)}"
        )
    if kernel_size % 2 == 0:
        raise ArchsmithError(f"kernel_size: must be odd, got {kernel_size}")
    return _mbconv_stack(
        in_shape[0],
        depth,
        dims=len(in_shape) - 1,
        expand_ratio=expand_ratio,
        kernel_size=kernel_size,
        norm_layer=norm_layer,
        act_layer=act_layer,
        dropout=dropout,
        reversible=reversible,
    )


@register_block("rev_transformer")
def rev_transformer_block(
    in_shape: tuple[int, ...],
    depth: Positive = 2,
    num_heads: Positive = 4,
    mlp_ratio: Ratio = 4.0,
    causal: bool | None = None,
    dropout: Probability = 0.0,
    per_position: bool = False,
    attn_layer: Annotated[LayerArg, LayerName("attn")] = "softmax",
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "layernorm",
    act_layer: Annotated[LayerArg, LayerName("act")] = "gelu",
    linear_layer: Annotated[LayerArg, LayerName("linear")] = "dense",
    mlp_layer: Annotated[LayerArg, LayerName("mlp")] = "dense",
    reversible: bool = True,
) -> nn.Module:
    """A reversible stack of ``depth`` Transformer layers on ``[T, D]`` (causal by default on
    next-token tasks)."""
    if len(in_shape) != 2:
        raise ArchsmithError(
            "rev_transformer needs a token sequence [T, D] (add an 'embed' block), "
            f"got {list(in_shape)}"
        )
    dim = in_shape[1]
    if dim % num_heads:
        raise ArchsmithError(f"num_heads: width {dim} is not divisible by {num_heads} heads")
    return ReversibleTransformer(
        dim,
        depth,
        num_heads,
        mlp_ratio,
        reversible=reversible,
        attn_layer=attn_layer,
        norm_layer=norm_layer,
        act_layer=act_layer,
        linear_layer=linear_layer,
        mlp_layer=mlp_layer,
        causal=per_position if causal is None else causal,
        dropout=dropout,
    )
