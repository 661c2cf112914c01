"""Registered GLA models: ``gla_lm`` (language model, optionally hybrid with softmax attention)
and ``vig`` (ViG: bidirectional GLA with 2D locality for images).

Both are built from the shared Transformer parts of :mod:`archsmith.models.transformer`: ``gla_lm``
is the :class:`~archsmith.models.transformer.Transformer` builder with one attention type per
block (GLA or softmax, from ``pattern``), and ViG's blocks are its
:class:`~archsmith.models.transformer.TransformerBlock` with the 2D bidirectional GLA as the
token mixer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import torch
from einops import rearrange
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.gating.layers import GatedLinearAttention, GLAState, VisionGatedLinearAttention
from archsmith.models.transformer import Transformer, TransformerBlock, transformer_stack
from archsmith.options import LayerName, Range
from archsmith.registry import LayerArg, get_layer, register_model

__all__ = ["GLACache", "GLALanguageModel", "ViG", "gla_lm", "vig"]

Positive = Annotated[int, Range(min=1)]
PositiveFloat = Annotated[float, Range(min=0.0, min_inclusive=False)]
Probability = Annotated[float, Range(min=0.0, max=1.0, max_inclusive=False)]


@dataclass
class GLACache:
    """Decoding state of a :class:`GLALanguageModel`: one layer state (:data:`GLAState`: the
    ``[B, H, D, Dv]`` recurrent state, with ``short_conv`` also the conv state) per block and
    the position of the next token."""

    states: list[GLAState]
    position: int


def _layer_kinds(pattern: str, depth: int) -> str:
    """``depth`` letters (``g`` = GLA, ``s`` = softmax), ``pattern`` repeated; "" is all GLA."""
    pattern = pattern or "g"
    if set(pattern) - {"g", "s"}:
        raise ArchsmithError(
            f"options.pattern: letters must be 'g' (GLA) or 's' (softmax attention), "
            f"got {pattern!r}"
        )
    return "".join(pattern[i % len(pattern)] for i in range(depth))


class GLALanguageModel(Transformer):
    """The :class:`~archsmith.models.transformer.Transformer` builder with blocks whose token
    mixer is GLA (``g``) or softmax attention (``s``), one letter of ``pattern`` per block
    (Yang et al., 2024; the hybrid mixes in softmax layers as their section 6 ablation does).

    Args:
        pattern: the letters, repeated to ``depth`` blocks; ``""`` (default) is all GLA.
        expand_k, chunk_size, short_conv: of every GLA layer (:class:`GatedLinearAttention`).
        depth, and the other options (``dim``, ``num_heads``, ``mlp_layer``, ...): as the
        builder; ``attn_layer`` comes from ``pattern``.

    Shapes: ``x`` -> ``[B, T, num_outputs]`` with ``per_position``, else ``[B, num_outputs]``
    (see the builder). A causal model of pure GLA blocks on token inputs can generate with
    :meth:`prefill` and :meth:`step` in ``O(1)`` memory per token.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_outputs: int,
        *,
        depth: int = 2,
        pattern: str = "",
        expand_k: float = 0.5,
        chunk_size: int = 64,
        short_conv: int = 0,
        **options: Any,
    ) -> None:
        kinds = _layer_kinds(pattern, depth)
        gla = functools.partial(
            GatedLinearAttention, expand_k=expand_k, chunk_size=chunk_size, short_conv=short_conv
        )
        attn_layers = [gla if kind == "g" else "softmax" for kind in kinds]
        super().__init__(in_shape, num_outputs, depth=depth, attn_layer=attn_layers, **options)
        self.kinds = kinds

    def _check_decodable(self) -> None:
        if not (self.causal and self.per_position and self.embed.kind == "tokens"):
            raise ArchsmithError("gla_lm: decoding needs a causal per-position model on tokens")
        if "s" in self.kinds:
            raise ArchsmithError("gla_lm: decoding needs GLA in every block (pattern without 's')")

    def _decoding_blocks(self) -> list[tuple[TransformerBlock, GatedLinearAttention]]:
        self._check_decodable()
        pairs = []
        for block in self.blocks.children():
            assert isinstance(block, TransformerBlock)
            assert isinstance(block.attn, GatedLinearAttention)
            pairs.append((block, block.attn))
        return pairs

    def prefill(self, tokens: torch.Tensor) -> tuple[torch.Tensor, GLACache]:
        """Run a prompt ``tokens: [B, T]``; returns its logits ``[B, T, num_outputs]`` and the
        cache for :meth:`step`."""
        self._check_decodable()
        h = self.embed(tokens)
        states = []
        for block, attn in self._decoding_blocks():
            y, state = attn.prefill(block.norm1(h))
            h = _finish_block(block, h, y)
            states.append(state)
        return self.head(self.norm(h)), GLACache(states, tokens.shape[1])

    def step(self, token: torch.Tensor, cache: GLACache) -> tuple[torch.Tensor, GLACache]:
        """Decode one token ``[B]``: logits ``[B, num_outputs]`` and the advanced cache."""
        self._check_decodable()
        if cache.position >= self.embed.length:
            raise ArchsmithError(f"gla_lm: positions end at {self.embed.length} tokens")
        h = self.embed.embed(token) + self.embed.pos[cache.position]  # [B, dim]
        states = []
        for (block, attn), state in zip(self._decoding_blocks(), cache.states, strict=True):
            y, state = attn.step(block.norm1(h), state)
            h = _finish_block(block, h, y)
            states.append(state)
        return self.head(self.norm(h)), GLACache(states, cache.position + 1)


def _finish_block(block: TransformerBlock, h: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
    """The rest of ``block`` once its token mixer gave ``mixed`` for ``h`` (both ``[B, ..., D]``):
    the attention residual, then the MLP's, as :meth:`TransformerBlock.forward` does them."""
    h = h + block.drop(mixed)
    return h + block.drop(block.mlp(block.norm2(h)))


@register_model(
    "gla_lm",
    default_task="mqar",
    inputs=("tokens", "image", "vector"),
    task_kinds=("sequence", "classification", "regression"),
    family="gating",
)
def gla_lm(
    in_shape: tuple[int, ...],
    num_outputs: int,
    vocab_size: int | None = None,
    per_position: bool = False,
    dim: Positive = 64,
    depth: Positive = 2,
    num_heads: Positive = 4,
    mlp_ratio: PositiveFloat = 4.0,
    pattern: str = "",
    causal: bool | None = None,
    dropout: Probability = 0.0,
    expand_k: PositiveFloat = 0.5,
    chunk_size: Positive = 64,
    short_conv: Annotated[int, Range(min=0)] = 4,
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "layernorm",
    act_layer: Annotated[LayerArg, LayerName("act")] = "gelu",
    mlp_layer: Annotated[LayerArg, LayerName("mlp")] = "dense",
) -> nn.Module:
    """Gated linear attention language model; ``pattern="gs"`` alternates GLA and softmax;
    ``short_conv=K`` puts a kernel-``K`` causal depthwise convolution on each GLA layer's
    ``q, k, v`` (see :class:`GatedLinearAttention`; 0 for the paper's layer without one).

    The default is 4 (flash-linear-attention's kernel) because without it two-layer GLA does not
    learn associative recall at small width: with ``archsmith bench mqar``'s quick recipe (width
    ~64, two layers) test accuracy goes from 0.253 to 0.998 at T=64 with 4 key-value pairs and
    from 0.132 to 0.996 at T=128 with 8 (without it, it never beats ``1 / num_kv``).
    """
    # each option is the builder's keyword of the same name; first thing in the body, locals()
    # holds exactly the options
    return GLALanguageModel(**locals())


def _vision_gla(grid: tuple[int, int]) -> Callable[..., nn.Module]:
    """:class:`VisionGatedLinearAttention` on a ``grid`` of patches as an ``attn_layer``
    (``(dim, num_heads, *, causal, dropout)``); it is bidirectional by construction."""

    def make(dim: int, num_heads: int, *, causal: bool = False, dropout: float = 0.0) -> nn.Module:
        if causal:
            raise ArchsmithError("vig: the 2D bidirectional GLA cannot be causal")
        return VisionGatedLinearAttention(dim, num_heads, grid, dropout=dropout)

    return make


class ViG(nn.Module):
    """ViG (Liao et al., 2024): patch embedding, blocks of bidirectional GLA with
    direction-wise gates and 2D gating locality injection, mean pooling, a linear head.

    Shapes: ``x: [B, C, H, W] -> [B, num_outputs]``; ``patch_size`` divides ``H`` and ``W``.
    """

    def __init__(
        self,
        in_shape: tuple[int, ...],
        num_outputs: int,
        *,
        patch_size: int = 2,
        dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        norm_layer: LayerArg = "layernorm",
        act_layer: LayerArg = "gelu",
    ) -> None:
        super().__init__()
        c, h, w = in_shape
        if h % patch_size or w % patch_size:
            raise ArchsmithError(
                f"options.patch_size: {patch_size} does not divide the {h}x{w} image"
            )
        self.grid = (h // patch_size, w // patch_size)
        self.patch = nn.Conv2d(c, dim, kernel_size=patch_size, stride=patch_size)
        self.pos = nn.Parameter(torch.randn(self.grid[0] * self.grid[1], dim) * 0.02)
        # ``x + BiGLA2D(norm(x))`` then ``x + mlp(norm(x))`` per block
        self.blocks = transformer_stack(
            dim,
            depth,
            num_heads,
            mlp_ratio,
            attn_layer=_vision_gla(self.grid),
            norm_layer=norm_layer,
            act_layer=act_layer,
            dropout=dropout,
        )
        self.norm = get_layer("norm", norm_layer)(dim)
        self.head = nn.Linear(dim, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = rearrange(self.patch(x), "b d r c -> b (r c) d") + self.pos  # row-major grid
        return self.head(self.norm(self.blocks(tokens)).mean(dim=1))


@register_model(
    "vig",
    default_task="digits",
    inputs=("image",),
    task_kinds=("classification", "regression"),
    family="gating",
)
def vig(
    in_shape: tuple[int, ...],
    num_outputs: int,
    patch_size: Positive = 2,
    dim: Positive = 64,
    depth: Positive = 2,
    num_heads: Positive = 4,
    mlp_ratio: PositiveFloat = 4.0,
    dropout: Probability = 0.0,
    norm_layer: Annotated[LayerArg, LayerName("norm")] = "layernorm",
    act_layer: Annotated[LayerArg, LayerName("act")] = "gelu",
) -> nn.Module:
    """ViG: bidirectional gated linear attention with 2D locality, for images."""
    if dim % num_heads:
        raise ArchsmithError(f"options.num_heads: dim {dim} is not divisible by {num_heads} heads")
    return ViG(
        in_shape,
        num_outputs,
        patch_size=patch_size,
        dim=dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=mlp_ratio,
        dropout=dropout,
        norm_layer=norm_layer,
        act_layer=act_layer,
    )
