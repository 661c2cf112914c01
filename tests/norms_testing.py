"""Checks shared by the selfnorm norm tests: outputs and every gradient against a reference."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from helpers import rel_err


def perturb_parameters(module: nn.Module, scale: float = 0.3) -> None:
    """Move every parameter off its initial value (gains 1, shifts 0 would hide swapped or
    ignored parameters), deterministically under the test seed."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))


def assert_matches(
    out: torch.Tensor,
    ref: torch.Tensor,
    inputs: Sequence[torch.Tensor],
    *,
    out_tol: float = 1e-12,
    grad_tol: float = 1e-10,
) -> None:
    """``out`` equals ``ref`` and so do the gradients of a random cotangent w.r.t. ``inputs``."""
    assert out.shape == ref.shape
    assert rel_err(out, ref) < out_tol, rel_err(out, ref)
    cotangent = torch.randn_like(out)
    grads = torch.autograd.grad(out, list(inputs), cotangent, retain_graph=True)
    ref_grads = torch.autograd.grad(ref, list(inputs), cotangent, retain_graph=True)
    for i, (a, b) in enumerate(zip(grads, ref_grads, strict=True)):
        assert torch.isfinite(a).all()
        assert b.abs().sum() > 0, f"reference gradient {i} is zero: the check would be vacuous"
        assert rel_err(a, b) < grad_tol, (i, rel_err(a, b))
