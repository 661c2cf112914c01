"""DMRG-style two-site sweeps (Stoudenmire & Schwab 2016, sec. 4): merging and splitting a bond,
truncation to chi, the bond's linear features, and that a sweep learns."""

from __future__ import annotations

import pytest
import torch

from archsmith.errors import ArchsmithError
from archsmith.tensornet.classifiers import MPSClassifier, dmrg_sweep
from archsmith.tensornet.classifiers.dmrg import (
    _left_envs,
    _right_envs,
    bond_features,
    merge_bond,
    split_bond,
)
from helpers import rel_err
from tensornet.classifiers.reference import feature, mps_full_tensor, mps_naive_logits


def _random_model(n: int, chi: int, classes: int, label_site: int, seed: int) -> MPSClassifier:
    torch.manual_seed(seed)
    model = MPSClassifier(n, classes, chi, label_site=label_site).double()
    with torch.no_grad():
        for core in model.cores:
            core.copy_(torch.randn_like(core))
    return model


def _unfolding_ranks(model: MPSClassifier) -> list[int]:
    """Rank of the full weight tensor across each cut (label counted on its own side)."""
    w = mps_full_tensor([c.detach() for c in model.cores], model.label_site)
    n, ranks = model.num_sites, []
    for cut in range(1, n):
        # label axis goes with the side holding the label site
        axes = list(range(n))
        left = axes[:cut] + ([n] if model.label_site < cut else [])
        right = [a for a in [*axes, n] if a not in left]
        mat = w.permute(*left, *right).reshape(int(torch.tensor(w.shape)[left].prod()), -1)
        ranks.append(int(torch.linalg.matrix_rank(mat)))
    return ranks


@pytest.mark.parametrize("move", ["right", "left"])
def test_split_is_truncated_svd(move: str) -> None:
    torch.manual_seed(0)
    dl, d, c, dr = 3, 2, 4, 5
    label_left = move == "left"
    a = torch.randn(dl, d, c, 6, dtype=torch.float64) if label_left else torch.randn(dl, d, 6)
    b = torch.randn(6, d, dr, dtype=torch.float64) if label_left else torch.randn(6, d, c, dr)
    bond = merge_bond(a.double(), b.double())  # [D_l, d, d, C, D_r]
    assert bond.shape == (dl, d, d, c, dr)
    # the matricization the split acts on: label with the site that keeps it
    perm = (0, 1, 3, 2, 4) if label_left else (0, 1, 2, 3, 4)
    rows = dl * d * (c if label_left else 1)
    s = torch.linalg.svdvals(bond.permute(*perm).reshape(rows, -1))
    for chi in (1, 2, 4, 6):
        left, right, rank = split_bond(bond, chi, move=move, pad_to=6)  # type: ignore[arg-type]
        assert rank == chi and left.shape[-1] == 6 and right.shape[0] == 6
        # Eckart-Young: the error is the norm of the discarded singular values
        err = (merge_bond(left, right) - bond).norm()
        assert abs(float(err) - float(s[rank:].norm())) < 1e-10 * float(s.norm())


def test_split_cutoff_drops_small_singular_values() -> None:
    torch.manual_seed(1)
    u = torch.linalg.qr(torch.randn(8, 8, dtype=torch.float64))[0]
    mat = u[:, :3] @ torch.diag(torch.tensor([1.0, 0.5, 1e-9], dtype=torch.float64)) @ u[:, :3].T
    bond = mat.reshape(4, 2, 2, 1, 4)  # [D_l, d, d, C, D_r]: rows (D_l d), columns (d C D_r)
    _, _, rank = split_bond(bond, 8, move="right", cutoff=1e-6)
    assert rank == 2


def test_bond_features_reproduce_logits() -> None:
    # with the environments of bond (j, j+1), logits are linear in the merged bond tensor
    n, label = 6, 2
    model = _random_model(n, 3, 3, label, seed=4)
    x = torch.rand(5, n, dtype=torch.float64)
    cores = [c.detach() for c in model.cores]
    phi = feature(x)
    ref = mps_naive_logits(cores, label, x)
    for j in (label - 1, label):  # label on the right site, then on the left one
        bond = merge_bond(cores[j], cores[j + 1])
        left = _left_envs(cores, phi, j)[j]
        right = _right_envs(cores, phi, j + 2)[j + 2]
        proj = bond_features(left, right, phi[:, j], phi[:, j + 1])
        out = proj @ bond.permute(0, 1, 2, 4, 3).reshape(-1, bond.shape[3])
        assert rel_err(out, ref) < 1e-12


@pytest.mark.parametrize("label_site", [0, 2, 4])
def test_sweep_without_steps_keeps_the_function(label_site: int) -> None:
    # 5 sites, 3 labels: no cut needs more than 2^2 * 3 = 12 singular values, so chi = 12
    # never truncates, and canonicalization, merges, splits and label moves are all exact
    model = _random_model(5, 12, 3, label_site, seed=label_site)
    x = torch.rand(9, 5, dtype=torch.float64)
    before = model(x).detach()
    dmrg_sweep(
        model, x, torch.zeros(9, dtype=torch.long), torch.nn.functional.cross_entropy, steps=0
    )
    assert rel_err(model(x), before) < 1e-10
    assert model.label_site == label_site and model.cores[label_site].ndim == 4


def test_sweep_truncation_respects_chi() -> None:
    model = _random_model(6, 8, 3, 3, seed=7)
    shapes = [tuple(c.shape) for c in model.cores]
    assert max(_unfolding_ranks(model)) > 2
    x = torch.rand(9, 6, dtype=torch.float64)
    dmrg_sweep(model, x, torch.zeros(9, dtype=torch.long), torch.nn.functional.cross_entropy,
               steps=0, chi=2)  # fmt: skip
    assert [tuple(c.shape) for c in model.cores] == shapes  # padded, shapes kept
    assert max(_unfolding_ranks(model)) <= 2


def test_sweep_lowers_the_loss() -> None:
    torch.manual_seed(0)
    n, classes = 10, 3
    x = torch.rand(60, n)
    y = (x[:, :3].sum(1) * classes / 3).long().clamp_max(classes - 1)  # a learnable rule
    model = MPSClassifier(n, classes, chi=4)
    loss_fn = torch.nn.functional.cross_entropy
    with torch.no_grad():
        losses = [float(loss_fn(model(x), y))]
    for _ in range(3):
        losses.append(dmrg_sweep(model, x, y, loss_fn, lr=0.5, steps=2))
        with torch.no_grad():  # the returned loss is the model's loss after the sweep
            assert abs(losses[-1] - float(loss_fn(model(x), y))) < 1e-4
    assert losses[-1] < 0.7 * losses[0] and losses[1] < losses[0]


def test_sweep_rejects_bad_options() -> None:
    model = MPSClassifier(4, 2, 2)
    x, y = torch.rand(3, 4), torch.zeros(3, dtype=torch.long)
    with pytest.raises(ArchsmithError, match="dmrg"):
        dmrg_sweep(model, x, y, torch.nn.functional.cross_entropy, lr=0.0)
