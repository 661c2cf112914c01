import math
from itertools import product

import pytest
import torch

from archsmith.errors import ArchsmithError
from archsmith.tensornet.core import (
    max_tt_ranks,
    tt_matrix_from_dense,
    tt_matrix_to_dense,
    tt_ranks,
    tt_svd,
    tt_to_full,
)
from helpers import rel_err


def _random_tt(sizes: list[int], ranks: list[int]) -> list[torch.Tensor]:
    full = [1, *ranks, 1]
    return [torch.randn(full[k], n, full[k + 1], dtype=torch.float64) for k, n in enumerate(sizes)]


def _naive_full(cores: list[torch.Tensor]) -> torch.Tensor:
    """Every entry as the product of the core slices (the TT definition, one entry at a time)."""
    sizes = [c.shape[1] for c in cores]
    out = torch.empty(sizes, dtype=cores[0].dtype)
    for idx in product(*[range(n) for n in sizes]):
        m = cores[0][:, idx[0], :]
        for k in range(1, len(cores)):
            m = m @ cores[k][:, idx[k], :]
        out[idx] = m[0, 0]
    return out


def test_tt_to_full_matches_definition() -> None:
    cores = _random_tt([3, 4, 2, 3], [2, 3, 2])
    assert rel_err(tt_to_full(cores), _naive_full(cores)) < 1e-13


@pytest.mark.parametrize(
    ("sizes", "ranks"),
    [([4, 5, 6, 3], [3, 4, 2]), ([6, 7, 8], [5, 2]), ([2, 3, 4, 3, 2], [2, 4, 5, 2])],
)
def test_tt_svd_recovers_known_ranks(sizes: list[int], ranks: list[int]) -> None:
    tensor = tt_to_full(_random_tt(sizes, ranks))
    at_ranks = tt_svd(tensor, max_rank=ranks)
    assert tt_ranks(at_ranks) == tuple(ranks)
    assert rel_err(tt_to_full(at_ranks), tensor) < 1e-6
    # the ranks are found, not given, under a relative-error truncation
    found = tt_svd(tensor, rel_error=1e-8)
    assert tt_ranks(found) == tuple(ranks)
    assert rel_err(tt_to_full(found), tensor) < 1e-6


@pytest.mark.parametrize("eps", [0.05, 0.3, 0.7])
def test_tt_svd_error_bound(eps: float) -> None:
    tensor = torch.randn(5, 6, 7, 4, dtype=torch.float64)
    cores = tt_svd(tensor, rel_error=eps)
    assert rel_err(tt_to_full(cores), tensor) <= eps
    ranks, caps = tt_ranks(cores), max_tt_ranks([5, 6, 7, 4])
    assert all(r <= c for r, c in zip(ranks, caps, strict=True))
    assert sum(ranks) < sum(caps)  # a truncation happened


def test_tt_svd_max_rank_caps_and_exact_without_cap() -> None:
    tensor = torch.randn(4, 5, 6, dtype=torch.float64)
    assert max(tt_ranks(tt_svd(tensor, max_rank=2))) == 2
    exact = tt_svd(tensor)
    assert tt_ranks(exact) == max_tt_ranks([4, 5, 6]) == (4, 6)
    assert rel_err(tt_to_full(exact), tensor) < 1e-12


def test_tt_svd_rejects_bad_arguments() -> None:
    with pytest.raises(ArchsmithError):
        tt_svd(torch.randn(3, 3), max_rank=0)
    with pytest.raises(ArchsmithError):
        tt_svd(torch.randn(3, 3, 3), max_rank=[2])


def _naive_tt_matrix(cores: list[torch.Tensor]) -> torch.Tensor:
    """W[(i_1..i_d), (j_1..j_d)] = prod_k G_k[:, i_k, j_k, :], row-major multi-indices."""
    out_modes = [c.shape[1] for c in cores]
    in_modes = [c.shape[2] for c in cores]
    w = torch.empty(math.prod(out_modes), math.prod(in_modes), dtype=cores[0].dtype)
    for i in product(*[range(m) for m in out_modes]):
        for j in product(*[range(n) for n in in_modes]):
            m = cores[0][:, i[0], j[0], :]
            for k in range(1, len(cores)):
                m = m @ cores[k][:, i[k], j[k], :]
            row = sum(i[k] * math.prod(out_modes[k + 1 :]) for k in range(len(i)))
            col = sum(j[k] * math.prod(in_modes[k + 1 :]) for k in range(len(j)))
            w[row, col] = m[0, 0]
    return w


def test_tt_matrix_to_dense_matches_definition() -> None:
    full = [1, 2, 3, 1]
    modes = [(2, 3), (3, 2), (2, 2)]
    cores = [
        torch.randn(full[k], m, n, full[k + 1], dtype=torch.float64)
        for k, (m, n) in enumerate(modes)
    ]
    assert rel_err(tt_matrix_to_dense(cores), _naive_tt_matrix(cores)) < 1e-13


def test_tt_matrix_roundtrip_and_known_ranks() -> None:
    w = torch.randn(12, 20, dtype=torch.float64)
    cores = tt_matrix_from_dense(w, in_modes=(5, 4), out_modes=(3, 4))
    assert [tuple(c.shape[1:3]) for c in cores] == [(3, 5), (4, 4)]
    assert rel_err(tt_matrix_to_dense(cores), w) < 1e-12
    full = [1, 2, 3, 1]
    modes = [(2, 3), (3, 2), (2, 2)]
    known = [
        torch.randn(full[k], m, n, full[k + 1], dtype=torch.float64)
        for k, (m, n) in enumerate(modes)
    ]
    w = tt_matrix_to_dense(known)
    found = tt_matrix_from_dense(w, in_modes=(3, 2, 2), out_modes=(2, 3, 2), rel_error=1e-9)
    assert [c.shape[-1] for c in found[:-1]] == [2, 3]
    assert rel_err(tt_matrix_to_dense(found), w) < 1e-6
