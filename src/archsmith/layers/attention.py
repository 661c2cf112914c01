"""Attention layers (kind ``attn``): factories ``(dim, num_heads, *, causal, dropout)``
mapping ``[B, T, D] -> [B, T, D]``. The gating family registers ``gla``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from archsmith.registry import register_layer

__all__ = ["SoftmaxAttention"]


@register_layer("attn", "softmax")
class SoftmaxAttention(nn.Module):
    """Multi-head softmax attention (Vaswani et al., 2017) on
    :func:`torch.nn.functional.scaled_dot_product_attention`.

    Args:
        dim: model width D (divisible by ``num_heads``).
        num_heads: H; head size is D / H.
        causal: mask future positions (for next-token tasks).
        dropout: attention-probability dropout in training.

    Shapes: ``x: [B, T, D] -> [B, T, D]``.
    """

    def __init__(self, dim: int, num_heads: int, *, causal: bool = False, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.causal = causal
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b t (s h d) -> s b h t d", s=3, h=self.num_heads)
        out = F.scaled_dot_product_attention(
            q, k, v, is_causal=self.causal, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(rearrange(out, "b h t d -> b t (h d)"))
