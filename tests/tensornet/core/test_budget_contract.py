import torch

from archsmith.tensornet.core import (
    contract,
    expression,
    largest_uniform_rank,
    tt_params,
    tt_ranks_for_budget,
    tt_svd,
    tt_to_full,
    tucker_core_shape,
    tucker_hosvd,
    tucker_params,
    tucker_to_full,
)
from helpers import rel_err


def test_tucker_core_shape_finds_multilinear_rank_and_respects_budget() -> None:
    core = torch.randn(2, 4, 3, dtype=torch.float64)
    factors = [torch.randn(n, r, dtype=torch.float64) for n, r in ((8, 2), (9, 4), (7, 3))]
    tensor = torch.einsum("pqr,ip,jq,kr->ijk", core, *factors)
    assert tucker_core_shape(tensor, budget=10_000) == (2, 4, 3)
    ranks = tucker_core_shape(tensor, budget=40)
    assert tucker_params(tensor.shape, ranks) <= 40


def test_tucker_core_shape_beats_best_uniform_shape() -> None:
    # a mode with a fast-decaying spectrum should get a small rank, freeing budget for the others
    g = torch.Generator().manual_seed(1)
    tensor = torch.randn(10, 10, 10, dtype=torch.float64, generator=g)
    scale = torch.tensor([0.5**i for i in range(10)], dtype=torch.float64)
    tensor = tensor * scale[:, None, None]
    budget = 300
    best_uniform = max(r for r in range(1, 11) if tucker_params((10, 10, 10), (r, r, r)) <= budget)
    core, fac = tucker_hosvd(tensor, ranks=best_uniform)
    uniform_err = rel_err(tucker_to_full(core, fac), tensor)
    ranks = tucker_core_shape(tensor, budget)
    core, fac = tucker_hosvd(tensor, ranks=ranks)
    assert tucker_params((10, 10, 10), ranks) <= budget
    assert rel_err(tucker_to_full(core, fac), tensor) < uniform_err


def test_tt_ranks_for_budget() -> None:
    full = [1, 3, 2, 1]
    cores = [
        torch.randn(full[k], n, full[k + 1], dtype=torch.float64) for k, n in enumerate((5, 6, 7))
    ]
    tensor = tt_to_full(cores)
    assert tt_ranks_for_budget(tensor, budget=10_000) == (3, 2)
    ranks = tt_ranks_for_budget(torch.randn(6, 6, 6, 6, dtype=torch.float64), budget=500)
    assert tt_params((6, 6, 6, 6), ranks) <= 500
    assert rel_err(tt_to_full(tt_svd(tensor, max_rank=[3, 2])), tensor) < 1e-10


def test_largest_uniform_rank() -> None:
    assert largest_uniform_rank(lambda r: 10 * r, budget=95, max_rank=100) == 9
    assert largest_uniform_rank(lambda r: 10 * r, budget=5, max_rank=100) == 1
    assert largest_uniform_rank(lambda r: 10 * r, budget=10**6, max_rank=7) == 7


def test_contract_matches_einsum_and_caches() -> None:
    x, a, b = torch.randn(8, 3, 4), torch.randn(1, 5, 3, 2), torch.randn(2, 6, 4, 1)
    eq = "zij,pkiq,qljr->zkl"
    expected = torch.einsum(eq, x, a, b)
    before = expression.cache_info().hits
    for _ in range(3):
        assert rel_err(contract(eq, x, a, b), expected) < 1e-6
    assert expression.cache_info().hits >= before + 2
