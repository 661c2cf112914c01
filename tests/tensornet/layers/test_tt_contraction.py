"""TTLinear's two forward routes (factorized contraction, rebuilt dense weight) and the choice."""

from __future__ import annotations

import math

import pytest
import torch
from tests.helpers import rel_err

from archsmith.errors import ArchsmithError
from archsmith.tensornet.core import tt_matrix_to_dense
from archsmith.tensornet.layers import TTLinear
from archsmith.tensornet.layers.tt import RECONSTRUCT_FACTOR, prefers_dense, route_flops


@pytest.mark.parametrize("mode", ["factorized", "dense", "auto"])
@pytest.mark.parametrize(("n_in", "n_out", "rank"), [(96, 100, 3), (64, 64, (2, 5)), (97, 40, 4)])
def test_routes_match_the_naive_reference(
    mode: str, n_in: int, n_out: int, rank: int | tuple[int, ...]
) -> None:
    torch.manual_seed(0)
    layer = TTLinear(n_in, n_out, rank=rank, num_cores=3).double()
    layer.contraction = mode
    x = torch.randn(7, n_in, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    # naive reference: the weight rebuilt from the cores on its own, padded block cut out
    w = tt_matrix_to_dense([c.detach().clone().requires_grad_() for c in layer.cores])
    assert layer.bias is not None
    ref = x.detach() @ w[:n_out, :n_in].T + layer.bias.detach()
    assert rel_err(y, ref) < 1e-12
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, *layer.cores], g)
    x2 = x.detach().clone().requires_grad_()
    cores2 = [c.detach().clone().requires_grad_() for c in layer.cores]
    y2 = x2 @ tt_matrix_to_dense(cores2)[:n_out, :n_in].T
    ref_grads = torch.autograd.grad(y2, [x2, *cores2], g)
    for a, b in zip(grads, ref_grads, strict=True):
        assert rel_err(a, b) < 1e-11


def test_unknown_route_is_rejected() -> None:
    layer = TTLinear(16, 16, rank=2)
    layer.contraction = "fast"
    with pytest.raises(ArchsmithError, match="contraction"):
        layer(torch.randn(2, 16))


def test_choice_follows_the_flop_counts() -> None:
    modes = (16, 8, 8)
    # one row at a small rank: contracting the input is far cheaper than rebuilding the weight
    assert not prefers_dense(1, modes, modes, (4, 4))
    # a large batch at the full rank: the factorized path costs more than B N M
    full = TTLinear.max_rank(1024, 1024, in_modes=modes, out_modes=modes)
    assert prefers_dense(512, modes, modes, (full, full))
    # the rule itself, against a count done by hand for a 2-core layer (no path choice to make):
    # x [B, a, b] . G1 [1, a', a, r] . G2 [r, b', b, 1]
    b_rows, a, r = 64, 8, 3
    factorized = 2 * b_rows * a * a * r * a + 2 * b_rows * a * r * a * a  # best order either way
    rebuild = 2 * (a * a) * r * (a * a) + 2 * b_rows * (a * a) * (a * a)
    assert route_flops(b_rows, (a, a), (a, a), (r,)) == (factorized, rebuild)
    assert prefers_dense(b_rows, (a, a), (a, a), (r,)) == (
        rebuild <= RECONSTRUCT_FACTOR * factorized
    )
    assert math.isfinite(RECONSTRUCT_FACTOR)
