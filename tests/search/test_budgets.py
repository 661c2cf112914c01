"""Hard budgets: limits, the first broken one, Optuna constraint values, and the cost of a
candidate measured against independent counts."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from archsmith.build import create_model
from archsmith.cost import saved_activation_bytes
from archsmith.errors import ArchsmithError
from archsmith.search.budgets import Budgets, Rejection, candidate_cost, count_params
from archsmith.tasks import get_task


def test_check_names_the_first_broken_limit_and_violations_are_fractions() -> None:
    budgets = Budgets(params=1000, activation_mb=2.0)
    assert budgets.check({"params": 999, "activation_mb": 1.5}) is None
    rejection = budgets.check({"params": 1500, "activation_mb": 3.0})
    assert rejection == Rejection("params", 1500.0, 1000.0)
    assert rejection.reason == "params 1,500 > 1,000"
    v = budgets.violations({"params": 1500, "activation_mb": 1.0})
    assert v == pytest.approx({"params": 0.5, "activation_mb": -0.5})


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf])
def test_limits_must_be_positive_finite(bad: float) -> None:
    with pytest.raises(ArchsmithError, match="--max-params: must be a positive number"):
        Budgets(params=bad)


def test_unknown_cost_is_one_line() -> None:
    with pytest.raises(ArchsmithError, match="unknown cost 'memory'"):
        Budgets.from_dict({"memory": 3})


def test_candidate_cost_matches_independent_counts() -> None:
    task = get_task("digits-flat")
    torch.manual_seed(0)
    model = create_model("mlp", task=task, hidden=[32])
    cost = candidate_cost(model, task, batch_size=16, needed={"params", "flops", "activation_mb"})
    # 64 -> 32 -> 10 with biases, by hand
    assert cost["params"] == 64 * 32 + 32 + 32 * 10 + 10 == count_params(model)
    x, y = task.example_batch(16)
    expected = saved_activation_bytes(model, x, target=y, loss_fn=task.loss)
    assert cost["activation_mb"] == pytest.approx(expected / 2**20)
    # matmul FLOPs by hand (2*B*in*out each): both forwards, both gradients of the second
    # layer, and only the weight gradient of the first (the input needs none)
    forward = 2 * 16 * (64 * 32 + 32 * 10)
    backward = 2 * (2 * 16 * 32 * 10) + 2 * 16 * 64 * 32
    assert cost["flops"] == forward + backward
    assert "latency_ms" not in cost


def test_over_parameter_budget_never_runs_a_forward() -> None:
    class Exploding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.zeros(100, 100))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise AssertionError("a candidate over the parameter budget must not run")

    task = get_task("digits-flat")
    cost = candidate_cost(
        Exploding(), task, batch_size=8, needed={"params", "flops"}, budgets=Budgets(params=50)
    )
    assert cost == {"params": 10000.0}
