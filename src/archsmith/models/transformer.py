"""The pre-norm Transformer builder (Vaswani et al., 2017; pre-norm as in Xiong et al., 2020)
for token sequences, images (rows as tokens) and feature vectors, and the ``transformer``
baseline registered over it.

:class:`Transformer` is the one builder every Transformer-like registered model is a small
function over (``transformer``, ``rev_transformer``, ``gla_lm`` and its hybrids,
``moe_transformer``). It takes its parts the way timm's blocks do, as layer types (registry
names, classes or partials): ``attn_layer`` (one type, or one per block for hybrids),
``mlp_layer``, ``norm_layer``, ``act_layer``, ``linear_layer``, and ``stack_layer``, which makes
the ``depth`` blocks: :func:`transformer_stack` (plain residual blocks) by default, or a
family's stack such as the reversible one. The families pass their parts in; this module
imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

import torch
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.options import LayerName, Range
from archsmith.registry import LayerArg, get_layer, register_model

__all__ = [
    "SequenceEmbedding",
    "StackLayer",
    "Transformer",
    "TransformerBlock",
    "transformer",
    "transformer_stack",
]

#: Makes the blocks of a :class:`Transformer`: called as ``stack_layer(dim, depth, num_heads,
#: mlp_ratio, *, attn_layer, norm_layer, act_layer, linear_layer, mlp_layer, causal, dropout)``,
#: it returns a module ``[B, T, dim] -> [B, T, dim]``. :func:`transformer_stack` is one, and so
#: is the reversible family's ``ReversibleTransformer`` (as a partial fixing ``reversible``).
StackLayer = Callable[..., nn.Module]


class SequenceEmbedding(nn.Module):
    """Turns any task input into a token sequence ``[B, T, D]`` with learned positions.

    - tokens ``[B, T]`` (int64): a vocabulary embedding;
    - image ``[B, C, H, W]``: each of the H rows (C*W values) is a token, linearly embedded;
    - vector ``[B, F]``: each feature is a token: its value times a learned direction (shared)
      plus a learned per-feature embedding (as in FT-Transformer, Gorishniy et al., 2021).
    """

    def __init__(self, in_shape: tuple[int, ...], dim: int, vocab_size: int | None = None):
        super().__init__()
        self.in_shape = tuple(in_shape)
        self.embed: nn.Module
        if vocab_size is not None:
            (length,) = in_shape
            self.kind = "tokens"
            self.embed = nn.Embedding(vocab_size, dim)
        elif len(in_shape) == 3:
            c, length, w = in_shape
            self.kind = "image"
            self.embed = nn.Linear(c * w, dim)
        elif len(in_shape) == 1:
            (length,) = in_shape
            self.kind = "vector"
            self.embed = nn.Linear(1, dim)
        else:
            raise ValueError(f"cannot embed inputs of shape {in_shape}")
        self.length = length
        self.pos = nn.Parameter(torch.randn(length, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "image":
            x = x.permute(0, 2, 1, 3).flatten(2)  # [B, H, C*W]
        elif self.kind == "vector":
            x = x.unsqueeze(-1)  # [B, F, 1]
        h = self.embed(x)  # [B, T, D]
        return h + self.pos[: h.shape[1]]


class TransformerBlock(nn.Module):
    """``x + attn(norm(x))`` then ``x + mlp(norm(x))`` on ``[B, T, D]``.

    Args:
        dim: width D. num_heads: attention heads. mlp_ratio: MLP hidden width / D.
        attn_layer, norm_layer, act_layer, linear_layer, mlp_layer: layer types (names, classes,
            partials); ``mlp_layer="moe"`` makes the MLP a mixture of experts.
        causal: mask future positions. dropout: on attention probabilities and residual branches.
    """

    def __init__(
        self,
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
    ) -> None:
        super().__init__()
        norm = get_layer("norm", norm_layer)
        hidden = max(1, round(dim * mlp_ratio))
        self.norm1 = norm(dim)
        self.attn = get_layer("attn", attn_layer)(dim, num_heads, causal=causal, dropout=dropout)
        self.norm2 = norm(dim)
        self.mlp = get_layer("mlp", mlp_layer)(
            dim, hidden, act_layer=act_layer, linear_layer=linear_layer
        )
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.drop(self.mlp(self.norm2(x)))


def transformer_stack(
    dim: int,
    depth: int,
    num_heads: int = 4,
    mlp_ratio: float = 4.0,
    *,
    attn_layer: LayerArg | Sequence[LayerArg] = "softmax",
    **options: Any,
) -> nn.Sequential:
    """``depth`` :class:`TransformerBlock` s in sequence on ``[B, T, dim]`` (a
    :data:`StackLayer`).

    ``attn_layer`` is one type for every block, or a sequence of ``depth`` types, one per block:
    a hybrid model mixes token mixers that way (GLA and softmax attention in ``gla_lm``, as in
    the ablation of Yang et al., 2024, section 6). ``options`` (``norm_layer``, ``act_layer``,
    ``linear_layer``, ``mlp_layer``, ``causal``, ``dropout``) go to every block, as
    :class:`TransformerBlock` takes them.
    """
    if isinstance(attn_layer, str | None) or callable(attn_layer):
        attn_layers: list[LayerArg] = [attn_layer] * depth
    else:
        attn_layers = list(attn_layer)
        if len(attn_layers) != depth:
            raise ArchsmithError(f"{len(attn_layers)} attention layers for {depth} blocks")
    return nn.Sequential(
        *(TransformerBlock(dim, num_heads, mlp_ratio, attn_layer=a, **options) for a in attn_layers)
    )


class Transformer(nn.Module):
    """Embedding, a stack of ``depth`` blocks, a final norm and a linear head.

    Shapes: ``x`` (tokens ``[B, T]``, an image ``[B, C, H, W]`` or a vector ``[B, F]``, see
    :class:`SequenceEmbedding`) -> ``[B, T, num_outputs]`` with ``per_position`` (the head on
    every token, for next-token tasks), else ``[B, num_outputs]`` (the head on the mean over
    tokens).

    Args:
        in_shape, num_outputs, vocab_size, per_position: from the task.
        dim: width D, divisible by ``num_heads``. Default 64. depth: blocks. Default 2.
        num_heads: attention heads. Default 4. mlp_ratio: MLP hidden width / D. Default 4.
        causal: mask future positions; ``None`` (default) means ``per_position``.
        dropout: on attention probabilities and residual branches. Default 0.
        attn_layer, norm_layer, act_layer, linear_layer, mlp_layer: layer types (names, classes,
            partials) handed to ``stack_layer``; the plain stack also takes one ``attn_layer``
            per block. ``norm_layer`` is also the final norm.
        stack_layer: makes the blocks (a :data:`StackLayer`). Default :func:`transformer_stack`.

    Parameters are created in the order embedding, blocks, final norm, head, so a seed gives
    the same weights to every model built on this class as it did before they shared it.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_outputs: int,
        *,
        vocab_size: int | None = None,
        per_position: bool = False,
        dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        causal: bool | None = None,
        dropout: float = 0.0,
        attn_layer: LayerArg | Sequence[LayerArg] = "softmax",
        norm_layer: LayerArg = "layernorm",
        act_layer: LayerArg = "gelu",
        linear_layer: LayerArg = "dense",
        mlp_layer: LayerArg = "dense",
        stack_layer: StackLayer = transformer_stack,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ArchsmithError(
                f"options.num_heads: dim {dim} is not divisible by {num_heads} heads"
            )
        self.per_position = per_position
        self.causal = per_position if causal is None else causal
        self.embed = SequenceEmbedding(in_shape, dim, vocab_size)
        self.blocks = stack_layer(
            dim,
            depth,
            num_heads,
            mlp_ratio,
            attn_layer=attn_layer,
            norm_layer=norm_layer,
            act_layer=act_layer,
            linear_layer=linear_layer,
            mlp_layer=mlp_layer,
            causal=self.causal,
            dropout=dropout,
        )
        self.norm = get_layer("norm", norm_layer)(dim)
        self.head = nn.Linear(dim, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` -> ``[B, T, num_outputs]`` with ``per_position``, else ``[B, num_outputs]``."""
        h = self.norm(self.blocks(self.embed(x)))  # [B, T, D]
        if not self.per_position:
            h = h.mean(dim=1)  # [B, D]
        return self.head(h)


@register_model(
    "transformer",
    default_task="mqar",
    inputs=("tokens", "image", "vector"),
    task_kinds=("classification", "regression", "sequence"),
)
def transformer(
    in_shape: tuple[int, ...],
    num_outputs: int,
    vocab_size: int | None = None,
    per_position: bool = False,
    dim: Annotated[int, Range(min=1)] = 64,
    depth: Annotated[int, Range(min=1)] = 2,
    num_heads: Annotated[int, Range(min=1)] = 4,
    mlp_ratio: Annotated[float, Range(min=0.0, min_inclusive=False)] = 4.0,
    causal: bool | None = None,
    dropout: Annotated[float, Range(min=0.0, max=1.0, max_inclusive=False)] = 0.0,
    attn_layer: Annotated[LayerArg, LayerName("attn")] = "softmax",
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "layernorm",
    act_layer: Annotated[LayerArg, LayerName("act")] = "gelu",
    linear_layer: Annotated[LayerArg, LayerName("linear")] = "dense",
    mlp_layer: Annotated[LayerArg, LayerName("mlp")] = "dense",
) -> nn.Module:
    """Pre-norm softmax-attention Transformer (causal for next-token tasks).

    Options as :class:`Transformer`, with the plain stack of :class:`TransformerBlock` s.
    """
    # each option is the builder's keyword of the same name; first thing in the body, locals()
    # holds exactly the options
    return Transformer(**locals())
