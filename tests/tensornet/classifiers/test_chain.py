"""The MPS contraction against the naive full weight tensor (values and gradients), and its
stability over chains whose partial products leave the floating-point range."""

from __future__ import annotations

import pytest
import torch

from archsmith.tensornet.classifiers import MPSClassifier
from archsmith.tensornet.classifiers._chain import mps_logits, tree_product
from helpers import rel_err
from tensornet.classifiers.reference import feature, mps_naive_logits


def _random_model(
    n: int, chi: int, classes: int, label_site: int, seed: int, norm: str = "l2"
) -> MPSClassifier:
    torch.manual_seed(seed)
    model = MPSClassifier(n, classes, chi, label_site=label_site, feature_norm=norm).double()  # type: ignore[arg-type]
    with torch.no_grad():
        for core in model.cores:  # far from the identity init: every entry matters
            core.copy_(torch.randn_like(core))
    return model


@pytest.mark.parametrize("norm", ["l2", "l1"])
@pytest.mark.parametrize(("n", "chi", "label_site"), [(4, 3, 2), (5, 2, 0), (6, 4, 5), (5, 3, 1)])
def test_logits_match_full_tensor(n: int, chi: int, label_site: int, norm: str) -> None:
    model = _random_model(n, chi, 3, label_site, seed=n * 10 + label_site, norm=norm)
    x = torch.rand(7, n, dtype=torch.float64)
    ref = mps_naive_logits(list(model.cores), label_site, x, norm)
    assert rel_err(model(x), ref) < 1e-12
    # images are flattened row-major into the chain
    assert rel_err(model(x.reshape(7, 1, 1, n)), ref) < 1e-12


@pytest.mark.parametrize(("n", "chi", "label_site"), [(4, 3, 2), (6, 2, 0), (5, 3, 4)])
def test_gradients_match_full_tensor(n: int, chi: int, label_site: int) -> None:
    model = _random_model(n, chi, 4, label_site, seed=n + label_site)
    x = torch.rand(5, n, dtype=torch.float64)
    g = torch.randn(5, 4, dtype=torch.float64)
    params = list(model.cores)
    grads = torch.autograd.grad(model(x), params, g)
    ref_grads = torch.autograd.grad(mps_naive_logits(params, label_site, x), params, g)
    for a, b in zip(grads, ref_grads, strict=True):
        assert rel_err(a, b) < 1e-11


def test_gradcheck_through_rescaling() -> None:
    # the per-level rescaling divides by detached maxima: the gradient must still be exact
    model = _random_model(5, 2, 2, 2, seed=3)
    x = torch.rand(3, 5, dtype=torch.float64)
    cores = [c.detach().clone().requires_grad_() for c in model.cores]
    phi = feature(x)
    assert torch.autograd.gradcheck(lambda *cs: mps_logits(list(cs), phi, 2), cores)


def test_l1_features_only_rescale_each_sample() -> None:
    # the prediction argmax_l W^l . Phi(x) is that of the paper's unit-norm map
    model = _random_model(6, 3, 4, 3, seed=5, norm="l2")
    x = torch.rand(8, 6, dtype=torch.float64)
    unit = model(x)
    model.feature_norm = "l1"
    gain = (torch.cos(torch.pi * x / 2) + torch.sin(torch.pi * x / 2)).prod(1, keepdim=True)
    assert rel_err(model(x) * gain, unit) < 1e-12


def test_identity_init_passes_any_input_with_gain_one() -> None:
    # with l1 features every transfer matrix of the identity init is exactly the identity
    model = MPSClassifier(64, 10, chi=8, init_std=0.0)
    out = model(torch.rand(5, 1, 8, 8))
    assert rel_err(out, torch.ones(5, 10)) < 1e-6


def test_tree_product_matches_ordered_product() -> None:
    torch.manual_seed(0)
    for n in (1, 2, 3, 5, 8, 13):
        mats = torch.randn(2, n, 3, 3, dtype=torch.float64)
        prod, log_scale = tree_product(mats)
        ref = mats[:, 0]
        for k in range(1, n):
            ref = ref @ mats[:, k]
        assert rel_err(prod * log_scale.exp()[:, None, None], ref) < 1e-12


def test_long_chain_beyond_float32_range() -> None:
    # chi = 1: f(x) is a plain product of per-site numbers a_j . phi(x_j); 40 sites with a
    # factor 100 then 40 with 1/100 give partial products of 1e80 (inf in float32) and f = 1.
    n = 80
    model = MPSClassifier(n, 2, chi=1, label_site=n - 1)
    x = torch.zeros(3, n)  # phi = [1, 0] at every site
    with torch.no_grad():
        for j, core in enumerate(model.cores):
            core.zero_()
            core[0, 0] = 100.0 if j < 40 else 0.01
    out = model(x)
    assert torch.isfinite(out).all()
    assert rel_err(out, torch.ones(3, 2)) < 1e-4
    # and in the other order the tiny partial products (1e-80) do not underflow to zero
    with torch.no_grad():
        for j, core in enumerate(model.cores):
            core[0, 0] = 0.01 if j < 40 else 100.0
    assert rel_err(model(x), torch.ones(3, 2)) < 1e-4
