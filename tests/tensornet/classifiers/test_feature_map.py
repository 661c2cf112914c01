"""The local feature map of local dimension d (against the binomial formula evaluated one scalar
at a time) and the MPS options that use it: ``local_dim`` and ``pixel_order``."""

from __future__ import annotations

import math

import pytest
import torch

from archsmith.build import create_model
from archsmith.errors import ArchsmithError
from archsmith.tasks import get_task
from archsmith.tensornet.classifiers import MPSClassifier, local_feature_map
from archsmith.tensornet.classifiers.mps import pixel_path
from helpers import rel_err
from tensornet.classifiers.reference import feature, mps_naive_logits


@pytest.mark.parametrize("dim", [2, 3, 4, 6])
@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_map_matches_binomial_formula(dim: int, norm: str) -> None:
    x = torch.rand(4, 5, dtype=torch.float64)
    phi = local_feature_map(x, norm=norm, dim=dim)  # type: ignore[arg-type]
    assert phi.shape == (4, 5, dim)
    assert rel_err(phi, feature(x, norm, dim)) < 1e-12
    # unit vectors: the squares are the binomial expansion of (cos^2 + sin^2)^(d-1) = 1
    total = phi.pow(2).sum(-1) if norm == "l2" else phi.sum(-1)
    assert rel_err(total, torch.ones(4, 5, dtype=torch.float64)) < 1e-12


def test_map_hand_values_d3() -> None:
    # x = 1/2: cos = sin = 1/sqrt(2), so phi = [1/2, sqrt(2)/2, 1/2]
    phi = local_feature_map(torch.tensor([0.5], dtype=torch.float64), dim=3)
    assert rel_err(phi[0], torch.tensor([0.5, math.sqrt(2) / 2, 0.5], dtype=torch.float64)) < 1e-12
    # white and black pixels are orthogonal basis states for every d
    ends = local_feature_map(torch.tensor([0.0, 1.0], dtype=torch.float64), dim=4)
    eye = torch.eye(4, dtype=torch.float64)
    assert rel_err(ends, eye[[0, 3]]) < 1e-12


def test_map_rejects_dim_one() -> None:
    with pytest.raises(ValueError, match="dim"):
        local_feature_map(torch.rand(3), dim=1)


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_mps_with_local_dim_matches_full_tensor(norm: str) -> None:
    torch.manual_seed(0)
    n, dim, label_site = 4, 3, 1
    model = MPSClassifier(n, 3, 2, label_site=label_site, feature_norm=norm, local_dim=dim)  # type: ignore[arg-type]
    model = model.double()
    with torch.no_grad():
        for core in model.cores:
            core.copy_(torch.randn_like(core))
    assert model.cores[label_site].shape == (2, dim, 3, 2)
    x = torch.rand(6, n, dtype=torch.float64)
    ref = mps_naive_logits(list(model.cores), label_site, x, norm, dim)
    assert rel_err(model(x), ref) < 1e-12


def test_identity_init_has_gain_one_for_any_local_dim() -> None:
    model = MPSClassifier(64, 10, chi=4, init_std=0.0, local_dim=5)
    assert rel_err(model(torch.rand(3, 64)), torch.ones(3, 10)) < 1e-5


def test_pixel_paths_by_hand() -> None:
    # a 3 x 4 grid, row-major indices 0..11
    assert pixel_path((1, 3, 4), "row") == list(range(12))
    assert pixel_path((1, 3, 4), "snake") == [0, 1, 2, 3, 7, 6, 5, 4, 8, 9, 10, 11]
    assert pixel_path((1, 3, 4), "column") == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert pixel_path((5,), "snake") == list(range(5))


@pytest.mark.parametrize("order", ["snake", "column"])
def test_pixel_order_feeds_the_chain_in_that_order(order: str) -> None:
    task = get_task("digits")
    torch.manual_seed(0)
    model = create_model("mps", task=task, chi=3, pixel_order=order)
    assert isinstance(model, MPSClassifier)
    plain = MPSClassifier(64, 10, 3)
    with torch.no_grad():
        for core in plain.cores:
            core.add_(0.3 * torch.randn_like(core))
        for a, b in zip(model.cores, plain.cores, strict=True):
            a.copy_(b)
    x = torch.rand(5, 1, 8, 8)
    # the reordered chain on the image is the row-major chain on the reordered pixels
    perm = torch.tensor(pixel_path((1, 8, 8), order))
    assert rel_err(model(x), plain(x.reshape(5, 64)[:, perm])) < 1e-5


def test_bad_order_is_rejected() -> None:
    with pytest.raises(ArchsmithError, match="permutation"):
        MPSClassifier(4, 2, 2, order=[0, 1, 1, 3])
