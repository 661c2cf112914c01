"""TTLinear's ``layout="fast"``: two cores whose contraction is cheaper than the dense matmul."""

from __future__ import annotations

import pytest
import torch
from tests.helpers import rel_err

from archsmith.errors import ArchsmithError
from archsmith.tensornet.layers import TTLinear
from archsmith.tensornet.layers.tt import fast_modes, route_flops, tt_fast


@pytest.mark.parametrize(
    ("n", "want"),
    [
        (1024, (2, 512)),
        (96, (2, 48)),
        (75, (2, 38)),
        (961, (2, 481)),
        (97, (2, 49)),
        (2, (2, 1)),
        (1, (1, 1)),
    ],
)
def test_fast_modes_split_off_two_padding_odd_sizes(n: int, want: tuple[int, int]) -> None:
    in_modes, out_modes = fast_modes(n, n)
    assert in_modes == want
    assert out_modes == want[::-1]  # the small out mode sits on the other core


@pytest.mark.parametrize(("n_in", "n_out"), [(96, 100), (97, 40), (1, 7)])
def test_fast_layout_matches_kronecker_sum_reference(n_in: int, n_out: int) -> None:
    torch.manual_seed(0)
    layer = TTLinear(n_in, n_out, rank=3, layout="fast").double()
    (p, n2), (m1, q) = layer.in_modes, layer.out_modes
    g1, g2 = (c.detach().clone().requires_grad_() for c in layer.cores)
    # independent reference: W = sum_k A_k (x) B_k with A_k = G1[0, :, :, k] ([m1, p]) and
    # B_k = G2[k, :, :, 0] ([q, n2]); torch.kron puts A's index major on both axes
    w = sum(torch.kron(g1[0, :, :, k], g2[k, :, :, 0]) for k in range(g1.shape[-1]))
    assert isinstance(w, torch.Tensor) and w.shape == (m1 * q, p * n2)
    x = torch.randn(5, n_in, dtype=torch.float64, requires_grad=True)
    assert layer.bias is not None
    y = layer(x)
    ref = x @ w[:n_out, :n_in].T + layer.bias.detach()
    assert rel_err(y, ref) < 1e-12
    g = torch.randn_like(y)
    got = torch.autograd.grad(y, [x, *layer.cores], g)
    want = torch.autograd.grad(ref, [x, g1, g2], g)
    for a, b in zip(got, want, strict=True):
        assert rel_err(a, b) < 1e-11


def test_fast_layout_from_linear_full_rank_is_exact() -> None:
    torch.manual_seed(1)
    dense = torch.nn.Linear(96, 100)
    layer = TTLinear.from_linear(
        dense, rank=TTLinear.max_rank(96, 100, layout="fast"), layout="fast"
    )
    x = torch.randn(4, 96)
    assert rel_err(layer(x), dense(x)) < 1e-5


@pytest.mark.parametrize("size", [1024, 4096])
@pytest.mark.parametrize("compression", [8, 32])
def test_fast_layout_costs_about_two_over_compression_of_dense(size: int, compression: int) -> None:
    rank = TTLinear.rank_for_params(
        size, size, size * size // compression, bias=False, layout="fast"
    )
    layer = TTLinear(size, size, rank=rank, layout="fast", bias=False)
    assert layer.num_params <= size * size // compression
    factorized, _ = route_flops(256, layer.in_modes, layer.out_modes, layer.ranks)
    dense = 2 * 256 * size * size
    # hand count: 2 B r (q N + p M) with p = q = 2
    assert factorized == 2 * 256 * rank * (2 * size + 2 * size)
    assert factorized / dense <= 2.0 / compression * 1.01
    balanced = TTLinear(size, size, rank=1)
    b_rank = TTLinear.rank_for_params(size, size, size * size // compression, bias=False)
    b_flops, _ = route_flops(256, balanced.in_modes, balanced.out_modes, (b_rank,) * 2)
    assert factorized < b_flops


def test_fast_layout_rejects_explicit_modes() -> None:
    with pytest.raises(ArchsmithError, match="layout='fast'"):
        TTLinear(64, 64, layout="fast", num_cores=3)
    with pytest.raises(ArchsmithError, match="layout='fast'"):
        TTLinear(64, 64, layout="fast", in_modes=(4, 4, 4), out_modes=(4, 4, 4))
    with pytest.raises(ArchsmithError, match="by definition"):
        tt_fast(64, 64, layout="balanced")
    with pytest.raises(ArchsmithError, match="layout must be one of"):
        TTLinear(64, 64, layout="wide")  # type: ignore[arg-type]


def test_rank_for_params_knows_the_registered_name() -> None:
    from archsmith.tensornet.layers import rank_for_params

    want = TTLinear.rank_for_params(256, 256, 4096, layout="fast")
    assert rank_for_params("tt_fast", 256, 256, 4096) == want
    assert TTLinear.param_count(256, 256, want, layout="fast") <= 4096
