"""The tree tensor network against its full weight tensor, written out by hand for small grids
(Stoudenmire 2018; Grant et al. 2018: a binary tree of order-3 node tensors, label on the root)."""

from __future__ import annotations

import pytest
import torch

from archsmith.errors import ArchsmithError
from archsmith.registry import create_model
from archsmith.tasks import get_task
from archsmith.tensornet.classifiers import TTNClassifier
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


def test_init_passes_any_input_with_gain_one() -> None:
    # every inner node sends any pair of l1-normalised children to bond value 0 with weight 1
    model = TTNClassifier(8, 8, 10, chi=5, init_std=0.0)
    assert rel_err(model(torch.rand(4, 1, 8, 8)), torch.ones(4, 10)) < 1e-6


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
