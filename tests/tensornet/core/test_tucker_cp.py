import pytest
import torch

from archsmith.errors import ArchsmithError
from archsmith.tensornet.core import cp_als, cp_to_full, tucker_hosvd, tucker_to_full
from archsmith.tensornet.layers.cp import exact_cp
from helpers import rel_err


def _tucker_tensor(sizes: tuple[int, ...], ranks: tuple[int, ...]) -> torch.Tensor:
    core = torch.randn(ranks, dtype=torch.float64)
    factors = [torch.randn(n, r, dtype=torch.float64) for n, r in zip(sizes, ranks, strict=True)]
    # written out index by index, independent of tucker_to_full's mode products
    return torch.einsum("pqr,ip,jq,kr->ijk", core, *factors)


def test_tucker_to_full_matches_einsum() -> None:
    core = torch.randn(2, 3, 2, dtype=torch.float64)
    factors = [torch.randn(n, r, dtype=torch.float64) for n, r in ((4, 2), (5, 3), (6, 2))]
    assert (
        rel_err(tucker_to_full(core, factors), torch.einsum("pqr,ip,jq,kr->ijk", core, *factors))
        < 1e-13
    )


def test_hosvd_recovers_multilinear_rank() -> None:
    tensor = _tucker_tensor((6, 7, 5), (2, 3, 2))
    core, factors = tucker_hosvd(tensor, ranks=(2, 3, 2))
    assert rel_err(tucker_to_full(core, factors), tensor) < 1e-10
    core, factors = tucker_hosvd(tensor, rel_error=1e-8)
    assert tuple(core.shape) == (2, 3, 2)
    for u in factors:  # orthonormal factors
        assert rel_err(u.T @ u, torch.eye(u.shape[1], dtype=u.dtype)) < 1e-12


@pytest.mark.parametrize("eps", [0.1, 0.5])
def test_hosvd_error_bound(eps: float) -> None:
    decay = [0.6 ** torch.arange(n, dtype=torch.float64) for n in (6, 5, 7)]
    tensor = torch.randn(6, 5, 7, dtype=torch.float64) * torch.einsum("i,j,k->ijk", *decay)
    core, factors = tucker_hosvd(tensor, rel_error=eps)
    assert rel_err(tucker_to_full(core, factors), tensor) <= eps
    assert core.numel() < tensor.numel()


def test_hosvd_rejects_bad_ranks() -> None:
    with pytest.raises(ArchsmithError):
        tucker_hosvd(torch.randn(3, 3, 3), ranks=(2, 2))


def test_cp_als_recovers_low_rank() -> None:
    factors = [torch.randn(n, 3, dtype=torch.float64) for n in (6, 5, 7)]
    tensor = torch.einsum("ir,jr,kr->ijk", *factors)
    fit = cp_als(tensor, 3, n_iter=500, tol=1e-14)
    assert rel_err(cp_to_full(fit), tensor) < 1e-6


def test_cp_als_beats_rank_one_and_improves_with_rank() -> None:
    tensor = torch.randn(5, 6, 4, dtype=torch.float64)
    errs = [rel_err(cp_to_full(cp_als(tensor, r)), tensor) for r in (1, 4, 12)]
    assert errs[0] > errs[1] > errs[2]


def test_exact_cp_is_exact() -> None:
    tensor = torch.randn(3, 5, 4, dtype=torch.float64)
    factors = exact_cp(tensor)
    assert factors[0].shape[1] == 3 * 4
    assert rel_err(torch.einsum("ir,jr,kr->ijk", *factors), tensor) < 1e-14
