"""Gated linear attention ops (Yang et al., 2024), in the tiers of flash-linear-attention.

One signature for every form: ``q, k, g: [B, T, H, D]``, ``v: [B, T, H, Dv]``, log-space
forget gates ``g <= 0``, ``scale`` (default ``D ** -0.5``), ``initial_state: [B, H, D, Dv]``,
``output_final_state``; each returns ``(o: [B, T, H, Dv], final_state or None)``.

- :func:`naive_recurrent_gla` — the reference loop from the paper's equations;
- :func:`parallel_gla` — the quadratic form with stable relative gate decays;
- :func:`chunk_gla` — the chunkwise training path (linear memory, matmuls inside chunks);
- :func:`fused_recurrent_gla_step` — one-step decoding on the state.
"""

from archsmith.gating.gla.chunk import chunk_gla, chunk_gla_flops
from archsmith.gating.gla.decode import fused_recurrent_gla_step
from archsmith.gating.gla.naive import naive_recurrent_gla
from archsmith.gating.gla.parallel import parallel_gla

__all__ = [
    "chunk_gla",
    "chunk_gla_flops",
    "fused_recurrent_gla_step",
    "naive_recurrent_gla",
    "parallel_gla",
]
