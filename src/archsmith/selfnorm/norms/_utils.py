"""Helpers shared by the channels-first normalization layers (``[B, C, *spatial]``)."""

from __future__ import annotations

import torch

__all__ = ["channel_shape", "check_channels_first", "default_num_groups", "resolve_num_groups"]


def default_num_groups(num_channels: int, max_groups: int = 32) -> int:
    """32 groups as in Group Norm (Wu & He, 2018) when ``num_channels`` allows it, else the
    largest divisor of ``num_channels`` that is ``<= max_groups`` (e.g. 40 -> 20, 33 -> 11)."""
    return max(g for g in range(1, min(max_groups, num_channels) + 1) if num_channels % g == 0)


def resolve_num_groups(num_channels: int, num_groups: int | None) -> int:
    """``num_groups`` checked against ``num_channels``; ``None`` picks :func:`default_num_groups`."""
    if num_groups is None:
        return default_num_groups(num_channels)
    if num_groups < 1 or num_channels % num_groups:
        raise ValueError(f"num_groups={num_groups} must be >= 1 and divide {num_channels} channels")
    return num_groups


def check_channels_first(
    x: torch.Tensor, num_features: int, name: str, *, min_dim: int = 2
) -> None:
    """Raise a one-line error unless ``x`` is ``[B, num_features, *spatial]`` with rank >= min_dim."""
    if x.dim() < min_dim or x.shape[1] != num_features:
        want = "[B, C]" if min_dim <= 2 else "[B, C, *spatial]"
        raise ValueError(
            f"{name} expects {want} with C={num_features} (rank >= {min_dim}), "
            f"got shape {tuple(x.shape)}"
        )


def channel_shape(x: torch.Tensor) -> tuple[int, ...]:
    """``(1, C, 1, ..., 1)``: the shape that broadcasts a per-channel ``[C]`` vector over ``x``."""
    return (1, x.shape[1]) + (1,) * (x.dim() - 2)
