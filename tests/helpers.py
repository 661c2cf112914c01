"""Shared test helpers."""

from __future__ import annotations

import torch


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """Relative error ``||a - e|| / max(||e||, tiny)``: the one comparison every family test uses."""
    actual, expected = actual.detach().double(), expected.detach().double()
    denom = expected.norm().clamp_min(1e-30)
    return float((actual - expected).norm() / denom)
