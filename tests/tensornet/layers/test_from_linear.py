import pytest
import torch
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.registry import get_layer
from archsmith.tensornet.layers import (
    FORMATS,
    BTTLinear,
    CPLinear,
    TensorLinear,
    TTLinear,
    TuckerLinear,
    rank_for_params,
)
from helpers import rel_err

CLASSES = [TTLinear, BTTLinear, TuckerLinear, CPLinear]
SIZES = [(96, 100), (100, 96), (384, 96), (97, 97), (64, 97)]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("n_in", "n_out"), SIZES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_full_rank_reproduces_dense(
    cls: type[TensorLinear], n_in: int, n_out: int, dtype: torch.dtype
) -> None:
    linear = nn.Linear(n_in, n_out).to(dtype)
    layer = cls.from_linear(linear, rank=cls.max_rank(n_in, n_out))  # type: ignore[attr-defined]
    x = torch.randn(7, 3, n_in, dtype=dtype)
    tol = 1e-5 if dtype == torch.float32 else 1e-11
    assert rel_err(layer(x), linear(x)) < tol
    assert rel_err(layer.dense_weight(), linear.weight) < tol
    assert all(p.dtype == dtype for p in layer.parameters())


@pytest.mark.parametrize("cls", [TTLinear, BTTLinear, TuckerLinear], ids=lambda c: c.__name__)
@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_rel_error_meets_target(cls: type[TensorLinear], eps: float) -> None:
    # a weight that is low-rank in the format plus 2% noise: truncation has something to drop
    low = cls(100, 96, rank=2).double()  # type: ignore[call-arg]
    w = low.dense_weight().detach()
    linear = nn.Linear(100, 96).double()
    with torch.no_grad():
        linear.weight.copy_(w + 0.02 * w.norm() / 96.0 * torch.randn_like(w))
    layer = cls.from_linear(linear, rel_error=eps)
    assert rel_err(layer.dense_weight(), linear.weight) <= eps
    assert layer.num_params < cls.from_linear(linear, rank=cls.max_rank(100, 96)).num_params  # type: ignore[attr-defined]


def test_cp_rel_error_meets_target() -> None:
    linear = nn.Linear(12, 10).double()
    layer = CPLinear.from_linear(linear, rel_error=0.3)
    assert rel_err(layer.dense_weight(), linear.weight) <= 0.3
    assert layer.rank < CPLinear.max_rank(12, 10)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_params_budget(cls: type[TensorLinear]) -> None:
    linear = nn.Linear(96, 128)
    budget = linear.weight.numel() // 3
    layer = cls.from_linear(linear, params=budget)
    assert layer.num_params <= budget
    assert layer.num_params > budget // 4  # the budget is used, not ignored
    assert rel_err(layer.bias, linear.bias) == 0.0


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_rank_for_params_is_largest_fitting(fmt: str) -> None:
    cls = FORMATS[fmt]
    budget = 6000
    r = rank_for_params(fmt, 96, 128, budget)
    assert cls.param_count(96, 128, r) <= budget  # type: ignore[attr-defined]
    if r < cls.max_rank(96, 128):  # type: ignore[attr-defined]
        assert cls.param_count(96, 128, r + 1) > budget  # type: ignore[attr-defined]
    assert cls(96, 128, rank=r).num_params == cls.param_count(96, 128, r)  # type: ignore[attr-defined,call-arg]


def test_btt_truncation_is_per_block_optimal() -> None:
    # independent reference: truncate every [m2, n2] block by its own SVD, one block at a time
    linear = nn.Linear(12, 20).double()
    layer = BTTLinear.from_linear(linear, rank=2, in_modes=(3, 4), out_modes=(4, 5))
    w = linear.weight.detach().reshape(4, 5, 3, 4)
    ref = torch.empty_like(w)
    for a in range(4):
        for c in range(3):
            u, s, vh = torch.linalg.svd(w[a, :, c, :])
            ref[a, :, c, :] = u[:, :2] @ torch.diag(s[:2]) @ vh[:2]
    assert rel_err(layer.dense_weight(), ref.reshape(20, 12)) < 1e-12


def test_from_linear_needs_exactly_one_target() -> None:
    linear = nn.Linear(8, 8)
    with pytest.raises(ArchsmithError, match="exactly one"):
        TTLinear.from_linear(linear)
    with pytest.raises(ArchsmithError, match="exactly one"):
        TTLinear.from_linear(linear, rank=2, params=10)
    with pytest.raises(ArchsmithError):
        TTLinear.from_linear(linear, rel_error=-1.0)
    with pytest.raises(ArchsmithError, match="below the smallest"):
        BTTLinear.from_linear(nn.Linear(96, 128), params=3000)  # rank 1 needs 3200


@pytest.mark.parametrize("name", ["tt", "tt_fast", "btt", "tucker", "cp"])
@pytest.mark.parametrize(("n_in", "n_out"), [(97, 89), (1, 7), (5, 1), (2, 3), (384, 1536)])
def test_registered_factory_any_size(name: str, n_in: int, n_out: int) -> None:
    layer = get_layer("linear", name)(n_in, n_out)
    assert isinstance(layer, TensorLinear)
    y = layer(torch.randn(2, 3, n_in))
    assert y.shape == (2, 3, n_out) and torch.isfinite(y).all()
    if n_in * n_out >= 4096:
        assert layer.num_params < n_in * n_out  # the default rank compresses
    no_bias = get_layer("linear", name)(n_in, n_out, bias=False)
    assert no_bias.bias is None
