"""Shared argument checks of the GLA ops: one signature for every form."""

from __future__ import annotations

import torch

from archsmith.errors import ArchsmithError

__all__ = ["check_inputs"]


def check_inputs(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    scale: float | None,
    initial_state: torch.Tensor | None,
) -> float:
    """Validate ``q, k, g: [B, T, H, D]``, ``v: [B, T, H, Dv]`` and ``initial_state:
    [B, H, D, Dv]``; return the query scale (default ``D ** -0.5``)."""
    if q.dim() != 4:
        raise ArchsmithError(f"gla: q must be [B, T, H, D], got shape {list(q.shape)}")
    if k.shape != q.shape or g.shape != q.shape:
        raise ArchsmithError(
            f"gla: q, k and g must have one shape [B, T, H, D], got {list(q.shape)}, "
            f"{list(k.shape)} and {list(g.shape)}"
        )
    b, t, h, d = q.shape
    if v.dim() != 4 or tuple(v.shape[:3]) != (b, t, h):
        raise ArchsmithError(
            f"gla: v must be [B, T, H, Dv] = [{b}, {t}, {h}, Dv], got {list(v.shape)}"
        )
    if initial_state is not None and tuple(initial_state.shape) != (b, h, d, v.shape[-1]):
        raise ArchsmithError(
            f"gla: initial_state must be [B, H, D, Dv] = {[b, h, d, v.shape[-1]]}, "
            f"got {list(initial_state.shape)}"
        )
    return d**-0.5 if scale is None else float(scale)
