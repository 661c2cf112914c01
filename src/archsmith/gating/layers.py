"""Gated linear attention layers (Yang et al., 2024, section 5; Liao et al., 2024 for ViG).

:class:`GatedLinearAttention` is the paper's token mixer and is registered as
``attn_layer="gla"``, so any archsmith block can take it. Per head (``D = dim * expand_k / H``
key and ``Dv = dim * expand_v / H`` value features):

- ``q, k, v = x W_q, x W_k, x W_v``, optionally each followed by a short depthwise causal
  convolution and SiLU (``short_conv`` > 0: the kernel size; flash-linear-attention's
  ``use_short_conv``, kernel 4). Zoology (Arora et al., 2023) and the GLA paper's recall
  experiments find this local mixing is what lets linear attention learn associative recall
  at small width: a key can see the token before it in one layer;
- a low-rank forget gate ``g = logsigmoid(x W_1 W_2 + b) / tau`` (``W_1: dim x 16``,
  ``tau = 16``: the paper's ``alpha = sigmoid(.)^(1/tau)``, which keeps the gates near 1 at
  initialisation so that memory is long);
- ``o = GLA(q, k, v, g)`` (:mod:`archsmith.gating.gla`), normalised per head (RMSNorm, as in
  flash-linear-attention; the paper uses LayerNorm), times a swish output gate
  ``swish(x W_r)``, then ``W_o``.

``causal=False`` gives the bidirectional layer of ViG: the same ``q, k, v`` run forward and
backward in time with a forget gate for each direction ("direction-wise gating"), and the two
outputs are averaged; its short convolution (if any) is centred instead of causal (``K // 2``
tokens on the left, the rest on the right) so that neither direction is favoured.
:class:`VisionGatedLinearAttention` adds ViG's 2D locality injection on
a token grid.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.gating.gla import (
    chunk_gla,
    fused_recurrent_gla_step,
    naive_recurrent_gla,
    parallel_gla,
)
from archsmith.registry import register_layer

__all__ = ["GLAMode", "GLAState", "GatedLinearAttention", "VisionGatedLinearAttention"]

GLAMode = Literal["chunk", "recurrent", "parallel"]

#: decoding state of one layer: the recurrent state ``[B, H, D, Dv]``, or with a short
#: convolution ``(recurrent state, conv state [B, K - 1, 2 * H * D + H * Dv])`` where the conv
#: state holds the last ``K - 1`` projected (pre-convolution) ``q, k, v`` inputs
GLAState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


def _heads_dim(dim: int, expand: float, num_heads: int) -> int:
    """Per-head width of ``dim * expand`` features split over ``num_heads`` (at least 1)."""
    return max(1, round(dim * expand / num_heads))


@register_layer("attn", "gla")
class GatedLinearAttention(nn.Module):
    """Gated linear attention: ``[B, T, dim] -> [B, T, dim]`` (Yang et al., 2024).

    Args:
        dim: model width.
        num_heads: H.
        causal: attend to the past only (the recurrent, decodable layer); ``False`` runs both
            directions with direction-wise forget gates (ViG's BiGLA) and averages them.
        dropout: dropout on the gated output, before the output projection.
        expand_k: key (and query, gate) width per model width; default 0.5 as in the paper.
        expand_v: value width per model width; default 1.
        gate_low_rank_dim: inner width of the low-rank gate projection (16).
        gate_logit_normalizer: ``tau`` in ``g = logsigmoid(.) / tau`` (16).
        mode: ``"chunk"`` (training; default), ``"recurrent"`` (the reference loop) or
            ``"parallel"`` (quadratic); all compute the same function.
        chunk_size: chunk length of the chunkwise form.
        norm_eps: epsilon of the per-head RMSNorm.
        short_conv: kernel size ``K`` of a depthwise convolution (then SiLU) on each of the
            ``q, k, v`` projections; 0 (default) for none. Causal layers convolve over the past
            ``K`` tokens and decode exactly (the state keeps the last ``K - 1`` inputs).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 4,
        *,
        causal: bool = True,
        dropout: float = 0.0,
        expand_k: float = 0.5,
        expand_v: float = 1.0,
        gate_low_rank_dim: int = 16,
        gate_logit_normalizer: float = 16.0,
        mode: GLAMode = "chunk",
        chunk_size: int = 64,
        norm_eps: float = 1e-5,
        short_conv: int = 0,
    ) -> None:
        super().__init__()
        if short_conv < 0:
            raise ArchsmithError(f"gla: short_conv must be >= 0, got {short_conv}")
        if mode not in ("chunk", "recurrent", "parallel"):
            raise ArchsmithError(f"gla: mode must be chunk, recurrent or parallel, got {mode!r}")
        if num_heads < 1:
            raise ArchsmithError(f"gla: num_heads must be >= 1, got {num_heads}")
        self.num_heads = num_heads
        self.causal = causal
        self.mode: GLAMode = mode
        self.chunk_size = chunk_size
        self.gate_logit_normalizer = gate_logit_normalizer
        self.head_k = _heads_dim(dim, expand_k, num_heads)
        self.head_v = _heads_dim(dim, expand_v, num_heads)
        key_dim, value_dim = self.head_k * num_heads, self.head_v * num_heads
        directions = 1 if causal else 2
        self.q_proj = nn.Linear(dim, key_dim, bias=False)
        self.k_proj = nn.Linear(dim, key_dim, bias=False)
        self.v_proj = nn.Linear(dim, value_dim, bias=False)
        self.short_conv = short_conv
        # one depthwise conv over the concatenated q, k, v channels is the three convs of fla
        self.conv = (
            nn.Conv1d(
                2 * key_dim + value_dim,
                2 * key_dim + value_dim,
                short_conv,
                groups=2 * key_dim + value_dim,
                bias=False,
            )
            if short_conv
            else None
        )
        self.gk_proj = nn.Sequential(
            nn.Linear(dim, gate_low_rank_dim, bias=False),
            nn.Linear(gate_low_rank_dim, key_dim * directions, bias=True),
        )
        self.g_proj = nn.Linear(dim, value_dim, bias=True)  # output gate
        self.g_norm = nn.RMSNorm(self.head_v, eps=norm_eps)  # per head
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.o_proj = nn.Linear(value_dim, dim, bias=False)

    # ------------------------------------------------------------------------------------------
    # pieces

    def _short_conv(
        self, qkv: torch.Tensor, cache: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Depthwise convolution and SiLU over time: ``qkv: [B, T, C] -> ([B, T, C], the last
        K - 1 inputs [B, K - 1, C])``. Causal layers pad on the left with ``cache`` (the inputs
        before ``qkv``; zeros when ``None``); bidirectional ones centre the window."""
        assert self.conv is not None
        k = self.short_conv
        if self.causal:
            if cache is None:
                cache = qkv.new_zeros(qkv.shape[0], k - 1, qkv.shape[2])
            padded = torch.cat([cache, qkv], dim=1)
        else:
            padded = F.pad(qkv, (0, 0, k // 2, k - 1 - k // 2))
        out = F.silu(self.conv(rearrange(padded, "b t c -> b c t")))
        return rearrange(out, "b c t -> b t c"), padded[:, padded.shape[1] - (k - 1) :]

    def _qkvg(
        self, x: torch.Tensor, conv_cache: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """``[q, k: [B, T, H, D], v: [B, T, H, Dv], log gates [B, T, H, D] per direction (one,
        or two when bidirectional)]`` and the new conv state (``None`` without a conv)."""
        h = self.num_heads
        qkv = torch.cat([self.q_proj(x), self.k_proj(x), self.v_proj(x)], dim=-1)
        new_cache = None
        if self.conv is not None:
            qkv, new_cache = self._short_conv(qkv, conv_cache)
        key_dim = self.head_k * h
        q, k, v = (
            rearrange(t, "b t (h d) -> b t h d", h=h)
            for t in qkv.split([key_dim, key_dim, qkv.shape[-1] - 2 * key_dim], dim=-1)
        )
        gates = F.logsigmoid(self.gk_proj(x)) / self.gate_logit_normalizer
        g = rearrange(gates, "b t (s h d) -> s b t h d", h=h, d=self.head_k)
        return [q, k, v, *g.unbind(0)], new_cache

    def _split_state(self, state: GLAState | None) -> tuple[torch.Tensor | None, ...]:
        if state is None:
            return None, None
        if isinstance(state, torch.Tensor):
            if self.conv is not None:
                raise ArchsmithError("gla: a layer with short_conv needs (state, conv_state)")
            return state, None
        if self.conv is None:
            raise ArchsmithError("gla: a layer without short_conv takes a tensor state")
        return state

    def _join_state(self, state: torch.Tensor, conv: torch.Tensor | None) -> GLAState:
        return state if conv is None else (state, conv)

    def _gla(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        g: torch.Tensor,
        state: torch.Tensor | None = None,
        final: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.mode == "chunk":
            return chunk_gla(
                q,
                k,
                v,
                g,
                initial_state=state,
                output_final_state=final,
                chunk_size=self.chunk_size,
            )
        op = naive_recurrent_gla if self.mode == "recurrent" else parallel_gla
        return op(q, k, v, g, initial_state=state, output_final_state=final)

    def _mix(self, x: torch.Tensor) -> torch.Tensor:
        """The GLA output per head, ``[B, T, H, Dv]``, causal or the mean of both directions."""
        (q, k, v, *gates), _ = self._qkvg(x)
        if self.causal:
            return self._gla(q, k, v, gates[0])[0]
        # direction-wise gating: one batch holds the forward and the time-reversed sequence
        b = x.shape[0]
        qq, kk, vv = (torch.cat([t, t.flip(1)]) for t in (q, k, v))
        o = self._gla(qq, kk, vv, torch.cat([gates[0], gates[1].flip(1)]))[0]
        return (o[:b] + o[b:].flip(1)) / 2

    def _out(self, o: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-head norm, swish output gate, projection: ``o: [B, T, H, Dv] -> [B, T, dim]``."""
        gate = F.silu(self.g_proj(x))
        o = rearrange(self.g_norm(o), "b t h d -> b t (h d)") * gate
        return self.o_proj(self.drop(o))

    # ------------------------------------------------------------------------------------------
    # public

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, T, dim] -> [B, T, dim]``."""
        return self._out(self._mix(x), x)

    def _check_causal(self, what: str) -> None:
        if not self.causal:
            raise ArchsmithError(f"gla: {what} needs a causal layer (causal=True)")

    def prefill(
        self, x: torch.Tensor, state: GLAState | None = None
    ) -> tuple[torch.Tensor, GLAState]:
        """Run a prompt and return the state for decoding.

        Args:
            x: ``[B, T, dim]``.
            state: the state after earlier tokens (:data:`GLAState`: ``[B, H, D, Dv]``, with a
                short conv also the conv state); ``None`` for none.

        Returns:
            ``(y: [B, T, dim], state)``.
        """
        self._check_causal("prefill")
        recurrent, conv = self._split_state(state)
        (q, k, v, g), conv = self._qkvg(x, conv)
        o, final = self._gla(q, k, v, g, recurrent, final=True)
        assert final is not None
        return self._out(o, x), self._join_state(final, conv)

    def step(self, x: torch.Tensor, state: GLAState | None = None) -> tuple[torch.Tensor, GLAState]:
        """Decode one token in ``O(1)`` time and memory.

        Args:
            x: the token's input ``[B, dim]``.
            state: from :meth:`prefill` or the previous step (``None``: empty).

        Returns:
            ``(y: [B, dim], state)``.
        """
        self._check_causal("step")
        recurrent, conv = self._split_state(state)
        parts, conv = self._qkvg(x.unsqueeze(1), conv)
        q, k, v, g = (t.squeeze(1) for t in parts)
        o, final = fused_recurrent_gla_step(q, k, v, g, recurrent)
        return self._out(o.unsqueeze(1), x.unsqueeze(1)).squeeze(1), self._join_state(final, conv)


class VisionGatedLinearAttention(GatedLinearAttention):
    """ViG's bidirectional GLA with 2D gating locality injection (Liao et al., 2024, section 3).

    Tokens are a row-major ``grid = (rows, cols)`` of image patches. A depthwise 3x3 convolution
    with SiLU over the grid gives local features ``l``; ``q, k, v`` and the two direction-wise
    forget gates are projected from ``l``; the bidirectional GLA output ``o`` (global, 1D) and
    ``l`` (local, 2D) are both normalised per head and mixed by a learned sigmoid gate
    ``r = sigmoid(l W_r)``: ``o * r + l * (1 - r)``, then projected. Needs ``expand_v = 1``
    (``l`` and ``o`` must have the same width).

    Shapes: ``x: [B, rows * cols, dim] -> [B, rows * cols, dim]``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        grid: tuple[int, int],
        *,
        dropout: float = 0.0,
        **options: object,
    ) -> None:
        if dim % num_heads:
            raise ArchsmithError(f"vig: dim {dim} is not divisible by num_heads {num_heads}")
        super().__init__(dim, num_heads, causal=False, dropout=dropout, expand_v=1.0, **options)  # type: ignore[arg-type]
        self.grid = grid
        self.local = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim, bias=False), nn.SiLU()
        )
        self.l_norm = nn.RMSNorm(self.head_v, eps=self.g_norm.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = self.grid
        if x.shape[1] != rows * cols:
            raise ArchsmithError(f"vig: expected {rows * cols} tokens, got {x.shape[1]}")
        grid = rearrange(x, "b (r c) d -> b d r c", r=rows)
        local = rearrange(self.local(grid), "b d r c -> b (r c) d")  # [B, T, dim]
        o = self.g_norm(self._mix(local))  # [B, T, H, Dv]
        local_heads = self.l_norm(rearrange(local, "b t (h d) -> b t h d", h=self.num_heads))
        r = torch.sigmoid(rearrange(self.g_proj(local), "b t (h d) -> b t h d", h=self.num_heads))
        mixed = rearrange(o * r + local_heads * (1 - r), "b t h d -> b t (h d)")
        return self.o_proj(self.drop(mixed))
