"""The scale-invariance test and the radial projection shared by AdamP and SGDP."""

from __future__ import annotations

import math

import pytest
import torch

from archsmith.selfnorm.optim.projection import (
    abs_cosine,
    channel_view,
    layer_view,
    project_if_scale_invariant,
    remove_radial,
)
from helpers import rel_err

D = torch.float64


def tangent_to_rows(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``x`` with each channel row's component along ``w``'s row removed (exact, float64)."""
    wv, xv = channel_view(w), channel_view(x)
    u = wv / wv.norm(dim=1, keepdim=True)
    return (xv - (xv * u).sum(1, keepdim=True) * u).reshape(x.shape)


@pytest.mark.parametrize("shape", [(4, 3), (5, 2, 3, 3), (1, 7), (3, 1, 1)])
def test_remove_radial_per_channel(shape: tuple[int, ...]) -> None:
    w, u = torch.randn(shape, dtype=D), torch.randn(shape, dtype=D)
    u_copy = u.clone()
    out = remove_radial(w, u, channel_view, eps=0.0)
    assert torch.equal(u, u_copy)  # not in place
    dots = (channel_view(out) * channel_view(w)).sum(1)
    assert dots.abs().max() < 1e-12 * w.norm() * u.norm()
    # Only the radial part went away: what was removed is parallel to each row of w.
    assert rel_err(out, tangent_to_rows(w, u)) < 1e-12


def test_remove_radial_layerwise_is_one_projection_of_the_whole_tensor() -> None:
    w, u = torch.randn(4, 3, dtype=D), torch.randn(4, 3, dtype=D)
    out = remove_radial(w, u, layer_view, eps=0.0)
    assert abs(float((out * w).sum())) < 1e-12
    w_hat = w / w.norm()
    assert rel_err(out, u - (u * w_hat).sum() * w_hat) < 1e-14
    # ... which is not the per-row projection.
    assert rel_err(out, tangent_to_rows(w, u)) > 1e-3


def test_abs_cosine_rows_and_zero_rows() -> None:
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]], dtype=D)
    b = torch.tensor([[-2.0, 0.0], [1.0, 0.0], [1.0, 2.0]], dtype=D)
    cos = abs_cosine(a, b, eps=1e-8)
    assert torch.allclose(cos, torch.tensor([1.0, 1 / math.sqrt(2), 0.0], dtype=D))


def _with_cosine(w_row: torch.Tensor, cos: float) -> torch.Tensor:
    """A vector making angle ``acos(cos)`` with ``w_row`` (float64, exact enough)."""
    u = w_row / w_row.norm()
    other = torch.randn_like(w_row)
    other = other - (other @ u) * u
    other = other / other.norm()
    return cos * u + math.sqrt(1 - cos**2) * other


@pytest.mark.parametrize("dim", [4, 25, 100])
def test_threshold_is_delta_over_sqrt_dim(dim: int) -> None:
    """A single-row weight: projected just below ``delta / sqrt(dim)``, not just above."""
    delta = 0.1
    threshold = delta / math.sqrt(dim)
    w = torch.randn(1, dim, dtype=D)
    for factor, expected in ((0.99, "channel"), (1.01, None)):
        g = _with_cosine(w[0], factor * threshold)[None]
        res = project_if_scale_invariant(w, g, torch.randn_like(w), delta, 0.1, 1e-8)
        assert res.view == expected, factor


def test_channel_view_needs_every_row_below_threshold_then_layer_view_is_tried() -> None:
    """One row with a large cosine blocks the channel view; the layer view then decides."""
    torch.manual_seed(3)
    w = torch.randn(3, 50, dtype=D)
    g = tangent_to_rows(w, torch.randn(3, 50, dtype=D))  # every row orthogonal
    u = torch.randn(3, 50, dtype=D)
    assert project_if_scale_invariant(w, g, u, 0.1, 0.1, 1e-8).view == "channel"
    # Rows 0 and 1 get opposite radial parts: each row's cosine is large, but they cancel in
    # the whole-tensor dot product (scale the two rows' radial parts by their squared norms).
    g2 = g.clone()
    n0, n1 = w[0].norm() ** 2, w[1].norm() ** 2
    g2[0] += 5.0 * w[0] / n0
    g2[1] -= 5.0 * w[1] / n1
    assert abs(float((g2 * w).sum())) < 1e-12
    # eps=0: exact projection (eps > 0 leaves a radial remainder of relative size ~eps/||w||).
    res = project_if_scale_invariant(w, g2, u, 0.1, 0.25, 0.0)
    assert res.view == "layer" and res.wd_scale == 0.25
    assert abs(float((res.update * w).sum())) < 1e-12 * float(u.norm() * w.norm())
    # A real radial gradient fails both views.
    res = project_if_scale_invariant(w, g + 0.5 * w, u, 0.1, 0.25, 1e-8)
    assert res.view is None and res.wd_scale == 1.0 and res.update is u


def test_one_dimensional_and_empty_tensors_are_never_projected() -> None:
    b = torch.randn(6, dtype=D)
    g = b.flip(0) - (b.flip(0) @ b) / (b @ b) * b  # exactly orthogonal to b
    u = torch.randn(6, dtype=D)
    res = project_if_scale_invariant(b, g, u, 0.1, 0.1, 1e-8)
    assert res.view is None and res.wd_scale == 1.0 and res.update is u
    empty = torch.zeros(0, 3, dtype=D)
    assert project_if_scale_invariant(empty, empty, empty, 0.1, 0.1, 1e-8).view is None


def test_delta_zero_never_projects() -> None:
    w = torch.randn(4, 9, dtype=D)
    g = tangent_to_rows(w, torch.randn(4, 9, dtype=D))
    g = g - (g * w).sum() / (w * w).sum() * w  # orthogonal layer-wise too (cos ~ 1e-17)
    assert project_if_scale_invariant(w, g, g, 0.0, 0.1, 1e-8).view is None
