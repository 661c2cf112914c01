"""Layer formats: exact at full rank; the whitened MPO reaches the optimal output error."""

import pytest
import torch
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.tensornet.compress.formats import METHODS, get_format, variant_from_json
from archsmith.tensornet.compress.sensitivity import output_error
from helpers import rel_err


def _linear(in_f: int, out_f: int, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(in_f, out_f).double()


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize(("in_f", "out_f"), [(24, 36), (40, 20), (17, 12)])
def test_full_rank_reproduces_the_dense_layer(method, in_f, out_f):
    fmt = get_format(method)
    linear = _linear(in_f, out_f)
    x = torch.randn(64, in_f, dtype=torch.float64)
    gram = x.T @ x
    cls = fmt.layer_class
    for variant in fmt.variants(in_f, out_f):
        top = cls.max_rank(in_f, out_f, **dict(variant))  # type: ignore[attr-defined]
        for g in (None, gram):
            layer = fmt.factor(linear, top, variant, g)
            assert rel_err(layer(x), linear(x)) < 1e-8
            assert sum(p.numel() for p in layer.parameters()) == fmt.num_params(
                in_f, out_f, True, top, variant
            )


@pytest.mark.parametrize("rank", [1, 3, 7])
def test_whitened_mpo_reaches_the_optimal_output_error(rank):
    # the best rank-r approximation of the outputs Y = X W^T is reachable by a rank-r weight
    # (it lies in the column space of X), so min ||X (W - W_r)^T||^2 = tail energy of svd(Y)
    in_f, out_f, n = 20, 16, 200
    linear = _linear(in_f, out_f, seed=rank)
    mix = torch.randn(in_f, in_f, dtype=torch.float64) * torch.logspace(0, -2, in_f).double()
    x = torch.randn(n, in_f, dtype=torch.float64) @ mix  # correlated, badly scaled inputs
    fmt = get_format("mpo")
    variant = fmt.variants(in_f, out_f)[0]  # out split k = 1: rank-r product
    assert dict(variant)["out_modes"] == (out_f, 1)
    layer = fmt.factor(linear, rank, variant, x.T @ x)
    y = x @ linear.weight.detach().T
    s = torch.linalg.svdvals(y)
    optimal = float(s[rank:].pow(2).sum() / s.pow(2).sum())
    got = output_error(linear.weight, layer.dense_weight(), x.T @ x)  # type: ignore[operator]
    assert got == pytest.approx(optimal, rel=2e-2)  # the Gram damping costs a little
    plain = fmt.factor(linear, rank, variant, None)  # weight-space truncation, same structure
    assert output_error(linear.weight, plain.dense_weight(), x.T @ x) > got  # type: ignore[operator]


def test_mpo_splits_and_unknown_methods():
    fmt = get_format("mpo")
    splits = [dict(v)["out_modes"] for v in fmt.variants(384, 1536)]
    assert splits == [(1536, 1), (768, 2), (384, 4)]
    assert [dict(v)["in_modes"] for v in fmt.variants(384, 1536)] == [(1, 384)] * 3
    assert variant_from_json({"in_modes": [1, 4], "out_modes": [8, 1]}) == (
        ("in_modes", (1, 4)),
        ("out_modes", (8, 1)),
    )
    with pytest.raises(ArchsmithError, match="unknown compression method 'mp'"):
        get_format("mp")
