"""The tree tensor network against its full weight tensor, written out by hand for small grids
(Stoudenmire 2018; Grant et al. 2018: a binary tree of order-3 node tensors, label on the root)."""

from __future__ import annotations

import pytest
import torch

from archsmith.build import create_model
from archsmith.errors import ArchsmithError
from archsmith.tasks import get_task
from archsmith.tensornet.classifiers import TTNClassifier, fit_isometries
from archsmith.tensornet.classifiers.ttn import tree_levels
from helpers import rel_err
from tensornet.classifiers.reference import feature, product_state


def _random_ttn(height: int, width: int, classes: int, chi: int, seed: int) -> TTNClassifier:
    torch.manual_seed(seed)
    model = TTNClassifier(height, width, classes, chi, feature_norm="l2").double()
    with torch.no_grad():
        for node in model.nodes:
            node.copy_(torch.randn_like(node))
    return model


def _logits(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``W: [2, ..., 2, C]`` (pixels row-major) contracted with the product state of ``x: [B, N]``."""
    phi = product_state(feature(x))
    return phi.reshape(x.shape[0], -1) @ w.reshape(-1, w.shape[-1])


def test_2x2_grid_by_hand() -> None:
    # pixels p00 p01 / p10 p11: rows are merged first (p00-p01, p10-p11), then the two rows
    model = _random_ttn(2, 2, 3, chi=4, seed=0)
    t0, t1 = model.nodes
    w = torch.einsum("abi,cdj,ijl->abcdl", t0[0, 0], t0[1, 0], t1[0, 0])
    x = torch.rand(6, 4, dtype=torch.float64)
    assert rel_err(model(x.reshape(6, 1, 2, 2)), _logits(w, x)) < 1e-12


def test_2x4_grid_by_hand() -> None:
    # 2x4 -> 2x2 (horizontal pairs) -> 2x1 (horizontal pairs) -> 1x1 (the two rows)
    model = _random_ttn(2, 4, 2, chi=3, seed=1)
    t0, t1, t2 = model.nodes
    w = torch.einsum(
        "abi,cdj,efk,ghm,ijn,kmo,nol->abcdefghl",
        t0[0, 0], t0[0, 1], t0[1, 0], t0[1, 1], t1[0, 0], t1[1, 0], t2[0, 0],
    )  # fmt: skip
    x = torch.rand(5, 8, dtype=torch.float64)
    ref = _logits(w, x)
    assert rel_err(model(x.reshape(5, 1, 2, 4)), ref) < 1e-12
    g = torch.randn_like(ref)
    params = list(model.nodes)
    grads = torch.autograd.grad(model(x.reshape(5, 1, 2, 4)), params, g)
    w = torch.einsum(
        "abi,cdj,efk,ghm,ijn,kmo,nol->abcdefghl",
        t0[0, 0], t0[0, 1], t0[1, 0], t0[1, 1], t1[0, 0], t1[1, 0], t2[0, 0],
    )  # fmt: skip
    ref_grads = torch.autograd.grad(_logits(w, x), params, g)
    for a, b in zip(grads, ref_grads, strict=True):
        assert rel_err(a, b) < 1e-11


def test_vector_input_is_a_1xN_grid() -> None:
    # 1x4: (x0 x1) (x2 x3), then the two pairs
    model = _random_ttn(1, 4, 2, chi=3, seed=2)
    t0, t1 = model.nodes
    w = torch.einsum("abi,cdj,ijl->abcdl", t0[0, 0], t0[0, 1], t1[0, 0])
    x = torch.rand(4, 4, dtype=torch.float64)
    assert rel_err(model(x), _logits(w, x)) < 1e-12


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_init_is_calibrated_to_unit_gain(norm: str) -> None:
    # 63 Gaussian nodes multiply log-normal gains: uncalibrated, a median output norm ~1e-5
    torch.manual_seed(0)
    model = TTNClassifier(8, 8, 10, chi=8, feature_norm=norm)  # type: ignore[arg-type]
    x = torch.rand(300, 1, 8, 8)
    leaves = (torch.cos(torch.pi * x / 2) ** 2 + torch.sin(torch.pi * x / 2) ** 2).sqrt()
    if norm == "l1":
        leaves = leaves / (torch.cos(torch.pi * x / 2) + torch.sin(torch.pi * x / 2))
    gain = model(x).detach().norm(dim=1) / leaves.flatten(1).prod(1)
    assert 0.1 < float(gain.median()) < 10


def test_bond_dimensions_capped_by_chi_and_patch_size() -> None:
    model = TTNClassifier(8, 8, 10, chi=6)
    # a node over 2 pixels can carry at most 2^2 = 4 states; higher ones carry chi
    dims = [tuple(n.shape[2:]) for n in model.nodes]
    assert dims[0] == (2, 2, 4) and dims[1] == (4, 4, 6)
    assert all(d[-1] == 6 for d in dims[1:-1]) and dims[-1] == (6, 6, 10)
    assert [lv[:1] for lv in tree_levels(8, 8)] == [(2,), (1,), (2,), (1,), (2,), (1,)]


def test_deep_tree_is_finite_and_rescaled() -> None:
    # 8x8 leaves with nodes of scale 30: the raw contraction grows as 30^63, past float32 range
    # in the intermediate levels; only the final value matters, and here it is representable
    model = TTNClassifier(8, 8, 3, chi=1)
    x = torch.zeros(2, 1, 8, 8)  # phi = [1, 0] everywhere
    with torch.no_grad():
        for k, node in enumerate(model.nodes):
            node.zero_()
            # 63 nodes: the 48 nodes of the first two levels scale by 30, the other 15 by 1/30^3.2
            node[..., 0, 0, :] = 30.0 if k < 2 else 30.0 ** (-48 / 15)
    out = model(x)
    assert torch.isfinite(out).all() and rel_err(out, torch.ones(2, 3)) < 1e-4


def test_registered_on_digits_and_bad_grid() -> None:
    task = get_task("digits")
    model = create_model("ttn", task=task, chi=4)
    x, _ = task.example_batch(3)
    assert model(x).shape == (3, 10)
    with pytest.raises(ArchsmithError, match="powers of two"):
        TTNClassifier(6, 8, 10)


def test_fit_isometries_keeps_the_most_weight() -> None:
    # Stoudenmire 2018: each inner node is the isometry onto the top eigenvectors of the
    # children's reduced density matrix; the weight it keeps is the sum of the top eigenvalues,
    # i.e. of the largest squared singular values of the stacked pair states
    torch.manual_seed(0)
    model = TTNClassifier(2, 4, 3, chi=3, feature_norm="l2").double()
    root = model.nodes[-1].detach().clone()
    x = torch.rand(40, 8, dtype=torch.float64)
    fit_isometries(model, x)
    scale = model.nodes[-1].detach() / root  # the label-carrying root is only rescaled
    assert rel_err(scale, torch.full_like(scale, float(scale.mean()))) < 1e-12
    assert rel_err(model(x).pow(2).mean().sqrt(), torch.tensor(1.0)) < 1e-10
    phi = feature(x).reshape(40, 2, 4, 2)
    # level 0 pairs (p00, p01): states [40, 4]
    pair = torch.einsum("nl,nr->nlr", phi[:, 0, 0], phi[:, 0, 1]).reshape(40, 4)
    node = model.nodes[0][0, 0].detach().reshape(4, -1)  # [4, D_out = min(chi, 4) = 3]
    assert rel_err(node.T @ node, torch.eye(3, dtype=torch.float64)) < 1e-12
    kept = (pair @ node).pow(2).sum() / 40
    top = torch.linalg.svdvals(pair)[:3].pow(2).sum() / 40
    assert abs(float(kept - top)) < 1e-12
    # a level-1 node is an isometry too, fitted to the projected children
    node = model.nodes[1][0, 0].detach().reshape(9, -1)
    assert rel_err(node.T @ node, torch.eye(3, dtype=torch.float64)) < 1e-12
