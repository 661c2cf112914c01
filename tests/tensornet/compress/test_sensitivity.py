"""Sensitivity pieces: the Gram-matrix output error equals the explicit one; hooks see inputs."""

import itertools

import pytest
import torch
from torch import nn

from archsmith.tensornet.compress.sensitivity import input_grams, output_error, thin_ranks


def test_output_error_equals_the_explicit_output_error():
    x = torch.randn(50, 8, dtype=torch.float64)
    w, w2 = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    explicit = float((x @ (w - w2).T).pow(2).sum() / (x @ w.T).pow(2).sum())
    assert output_error(w, w2, x.T @ x) == pytest.approx(explicit, rel=1e-5)  # float32 products
    frob = float((w - w2).pow(2).sum() / w.pow(2).sum())
    assert output_error(w, w2) == pytest.approx(frob, rel=1e-12)


def test_input_grams_collect_every_layer_input():
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    batches = [torch.randn(5, 4), torch.randn(7, 2, 4)]  # token-shaped inputs are flattened
    layers = {"0": model[0], "2": model[2]}
    grams = input_grams(model, layers, lambda: [model(b) for b in batches])
    x0 = torch.cat([b.reshape(-1, 4) for b in batches]).double()
    x2 = torch.relu(model[0](x0.float())).double()
    assert torch.allclose(grams["0"], x0.T @ x0, rtol=1e-5)
    assert torch.allclose(grams["2"], x2.T @ x2, rtol=1e-5)
    assert not model[0]._forward_pre_hooks  # hooks removed


def test_thin_ranks_spreads_points_in_parameters():
    ranks = list(range(1, 201))
    params = [100 * r for r in ranks]
    picked = thin_ranks(ranks, params, max_points=11)
    assert picked[0] == 1 and picked[-1] == 200 and len(picked) == 11
    steps = [b - a for a, b in itertools.pairwise(picked)]
    assert max(steps) - min(steps) <= 1
    assert thin_ranks(ranks[:5], params[:5], max_points=11) == ranks[:5]
