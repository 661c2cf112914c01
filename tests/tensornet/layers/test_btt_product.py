"""BTTLinear's batched-matmul forward and its gradients against the paper's block formula."""

from __future__ import annotations

import pytest
import torch
from tests.helpers import rel_err

from archsmith.tensornet.layers import BTTLinear


def _weight_by_blocks(layer: BTTLinear) -> torch.Tensor:
    """``W[(a, b), (c, d)] = sum_s L[a, c, s, b] R[c, d, a, s]`` (Qiu et al. 2024), one
    ``[m2, n2]`` block at a time, cut to ``[out, in]``."""
    n1, m1 = layer.in_modes[0], layer.out_modes[0]
    left, right = layer.core_out, layer.core_in
    rows = []
    for a in range(m1):
        blocks = [left[a, c].T @ right[c, :, a, :].T for c in range(n1)]  # [m2, n2] each
        rows.append(torch.cat(blocks, dim=1))
    return torch.cat(rows, dim=0)[: layer.out_features, : layer.in_features]


@pytest.mark.parametrize(
    ("n_in", "n_out", "rank", "batch"),
    [(12, 20, 3, 1), (64, 64, 2, 7), (97, 40, 4, 5), (96, 100, 1, 3)],
)
def test_forward_and_gradients_match_the_block_formula(
    n_in: int, n_out: int, rank: int, batch: int
) -> None:
    torch.manual_seed(n_in + rank)
    layer = BTTLinear(n_in, n_out, rank=rank).double()
    x = torch.randn(batch, n_in, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, layer.core_in, layer.core_out], g)
    assert layer.bias is not None
    ref = x @ _weight_by_blocks(layer).T + layer.bias
    ref_grads = torch.autograd.grad(ref, [x, layer.core_in, layer.core_out], g)
    assert rel_err(y, ref) < 1e-12
    for a, b in zip(grads, ref_grads, strict=True):
        assert rel_err(a, b) < 1e-12


def test_gradcheck_and_no_input_grad() -> None:
    torch.manual_seed(0)
    layer = BTTLinear(12, 20, rank=2, bias=False).double()
    x = torch.randn(3, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))
    # an input that needs no gradient still trains the cores
    y = layer(x.detach())
    y.sum().backward()
    assert layer.core_in.grad is not None and layer.core_out.grad is not None
    assert layer.core_in.grad.abs().sum() > 0
