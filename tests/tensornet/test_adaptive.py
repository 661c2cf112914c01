"""Greedy TT rank growth: function-preserving growth, budget, recovery of known ranks."""

from __future__ import annotations

import itertools

import pytest
import torch
from tests.helpers import rel_err

from archsmith.errors import ArchsmithError
from archsmith.tensornet.adaptive import grow_bond, grow_tt_ranks
from archsmith.tensornet.core import tt_matrix_to_dense
from archsmith.tensornet.layers import TTLinear

MODES = (2, 4, 4, 2)  # 64 = 2 * 4 * 4 * 2; bond caps (4, 64, 4)


def _target(ranks: tuple[int, ...], seed: int) -> torch.Tensor:
    """A ``[64, 64]`` matrix that is exactly a TT-matrix of bond ranks ``ranks``."""
    gen = torch.Generator().manual_seed(seed)
    full = (1, *ranks, 1)
    cores = [
        torch.randn(full[k], m, n, full[k + 1], generator=gen, dtype=torch.float64)
        for k, (m, n) in enumerate(zip(MODES, MODES, strict=True))
    ]
    w = tt_matrix_to_dense(cores)
    return w / w.std() / 8


@pytest.mark.parametrize("bond", [0, 1, 2])
@pytest.mark.parametrize("by", [1, 3])
def test_grow_bond_preserves_the_function(bond: int, by: int) -> None:
    torch.manual_seed(bond + 10 * by)
    layer = TTLinear(64, 64, rank=(2, 3, 2), in_modes=MODES, out_modes=MODES).double()
    x = torch.randn(5, 64, dtype=torch.float64)
    grown = grow_bond(layer, bond, by)
    expected_ranks = list(layer.ranks)
    expected_ranks[bond] += by
    assert grown.ranks == tuple(expected_ranks)
    assert [tuple(c.shape) for c in grown.cores][bond][-1] == expected_ranks[bond]
    # the same weight (against the naive reconstruction) and the same outputs
    assert rel_err(tt_matrix_to_dense(list(grown.cores)), layer.dense_weight()) < 1e-13
    assert rel_err(grown(x), layer(x)) < 1e-13
    assert grown.bias is not None and layer.bias is not None
    assert torch.equal(grown.bias, layer.bias)
    # the old slices are kept, the new left slices are small but not zero, the right ones zero
    old = layer.ranks[bond]
    assert torch.equal(grown.cores[bond][..., :old], layer.cores[bond])
    assert torch.equal(grown.cores[bond + 1][:old], layer.cores[bond + 1])
    assert torch.count_nonzero(grown.cores[bond + 1][old:]) == 0
    new_left = grown.cores[bond][..., old:]
    assert 0 < new_left.abs().max() < 0.1 * layer.cores[bond].abs().max()
    # the new rank can learn at once: the zero slices get a gradient
    grown(x).square().sum().backward()
    assert grown.cores[bond + 1].grad is not None
    assert grown.cores[bond + 1].grad[old:].abs().max() > 0
    # the original is untouched
    assert layer.ranks == (2, 3, 2)


def test_grow_bond_rejects_bad_arguments() -> None:
    layer = TTLinear(64, 64, rank=1, in_modes=MODES, out_modes=MODES)
    with pytest.raises(ArchsmithError, match="bond"):
        grow_bond(layer, 3)
    with pytest.raises(ArchsmithError, match="by"):
        grow_bond(layer, 0, 0)


def test_recovers_the_true_ranks_of_a_synthetic_target() -> None:
    torch.manual_seed(0)
    true_ranks = (2, 4, 3)
    w = _target(true_ranks, seed=0).float()
    x = torch.randn(128, 64)
    y = x @ w.T
    scale = y.var()

    def loss_fn(layer: TTLinear) -> torch.Tensor:
        return ((layer(x) - y) ** 2).mean() / scale

    layer, history = grow_tt_ranks(
        (64, 64),
        loss_fn,
        loss_target=1e-6,
        steps_per_round=150,
        trial_steps=50,
        lr=2e-2,
        bias=False,
        in_modes=MODES,
        out_modes=MODES,
    )
    assert layer.ranks == true_ranks
    assert history[-1].loss <= 1e-6
    assert rel_err(layer.dense_weight(), w) < 1e-3
    # starts at rank one; every round grows exactly one bond by one, the one whose trial was best
    assert history[0].ranks == (1, 1, 1) and history[0].grown is None
    for prev, cur in itertools.pairwise(history):
        assert cur.grown is not None
        diff = [b - a for a, b in zip(prev.ranks, cur.ranks, strict=True)]
        assert diff == [1 if k == cur.grown else 0 for k in range(3)]
        assert cur.trials[cur.grown] == min(cur.trials.values())
        assert cur.params == TTLinear.param_count(
            64, 64, cur.ranks, bias=False, in_modes=MODES, out_modes=MODES
        )


def test_budget_is_respected() -> None:
    torch.manual_seed(1)
    w = _target((2, 4, 3), seed=1).float()
    x = torch.randn(64, 64)
    y = x @ w.T

    def loss_fn(layer: TTLinear) -> torch.Tensor:
        return ((layer(x) - y) ** 2).mean()

    budget = 150
    layer, history = grow_tt_ranks(
        (64, 64),
        loss_fn,
        budget=budget,
        steps_per_round=20,
        trial_steps=5,
        bias=False,
        in_modes=MODES,
        out_modes=MODES,
    )
    assert layer.num_params <= budget
    assert all(h.params <= budget for h in history)
    # stopped because nothing else fits: every single growth of the result is over budget
    for bond in range(3):
        assert grow_bond(layer, bond).num_params > budget
    # the trials of the last round never tried a growth over budget
    assert len(history) >= 2


def test_starts_from_a_given_layer_and_checks_inputs() -> None:
    torch.manual_seed(2)
    start = TTLinear(64, 64, rank=(2, 1, 1), in_modes=MODES, out_modes=MODES)
    layer, history = grow_tt_ranks(
        start, lambda m: m.dense_weight().square().sum(), steps_per_round=2, max_rounds=1
    )
    assert history[0].ranks == (2, 1, 1)
    assert len(history) <= 2 and layer.num_params >= start.num_params
    with pytest.raises(ArchsmithError, match="shape"):
        grow_tt_ranks((64,), lambda m: m.dense_weight().sum())
    with pytest.raises(ArchsmithError, match="only apply"):
        grow_tt_ranks(start, lambda m: m.dense_weight().sum(), bias=False)
    with pytest.raises(ArchsmithError, match="budget"):
        grow_tt_ranks(start, lambda m: m.dense_weight().sum(), budget=10)
