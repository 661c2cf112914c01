"""Pre-norm softmax-attention Transformer baseline (Vaswani et al., 2017; pre-norm as in
Xiong et al., 2020), for token sequences, images (rows as tokens) and feature vectors."""

from __future__ import annotations

from typing import Annotated

import torch
from torch import nn

from archsmith.options import LayerName, Range
from archsmith.registry import LayerArg, get_layer, register_model

__all__ = ["SequenceEmbedding", "Transformer", "TransformerBlock", "transformer"]


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


class Transformer(nn.Module):
    """Embedding, ``depth`` Transformer blocks, a final norm and a linear head.

    With ``per_position`` the head runs on every token (``[B, T, num_outputs]``, next-token
    tasks); otherwise on the mean over tokens (``[B, num_outputs]``).
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
        attn_layer: LayerArg = "softmax",
        norm_layer: LayerArg = "layernorm",
        act_layer: LayerArg = "gelu",
        linear_layer: LayerArg = "dense",
        mlp_layer: LayerArg = "dense",
    ) -> None:
        super().__init__()
        self.per_position = per_position
        causal = per_position if causal is None else causal
        self.embed = SequenceEmbedding(in_shape, dim, vocab_size)
        self.blocks = nn.Sequential(
            *(
                TransformerBlock(
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
            )
        )
        self.norm = get_layer("norm", norm_layer)(dim)
        self.head = nn.Linear(dim, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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
    """Pre-norm softmax-attention Transformer (causal for next-token tasks)."""
    if dim % num_heads:
        from archsmith.errors import ArchsmithError

        raise ArchsmithError(f"options.num_heads: dim {dim} is not divisible by {num_heads} heads")
    return Transformer(
        in_shape,
        num_outputs,
        vocab_size=vocab_size,
        per_position=per_position,
        dim=dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=mlp_ratio,
        causal=causal,
        dropout=dropout,
        attn_layer=attn_layer,
        norm_layer=norm_layer,
        act_layer=act_layer,
        linear_layer=linear_layer,
        mlp_layer=mlp_layer,
    )
