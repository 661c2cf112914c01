"""The RL controller against hand-computed cases: the REINFORCE gradient of one step (log-prob
gradient times advantage, through the softmax and the bounded logits), the rewards and moving-
average baseline it replays from a study's trials, and the discretisation of int/float ranges."""

from __future__ import annotations

import math

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from archsmith.search import records
from archsmith.search.samplers.choices import choices_of, index_of
from archsmith.search.samplers.controller import DECISIONS, ControllerSampler, Update
from archsmith.search.samplers.policy import Policy, reinforce_loss

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _first_step(policy: Policy, key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The raw head output and the hidden state of the first decision, outside the policy."""
    x, state = policy.start()
    h, _ = policy.cell(x, state)
    head = policy.heads[policy._slot(key)]
    return (head(h)[0] / policy.temperature).detach(), h[0].detach()


@pytest.mark.parametrize(("tanh_c", "temperature"), [(None, 1.0), (2.5, 5.0)])
def test_reinforce_gradient_of_one_step_is_advantage_times_score(
    tanh_c: float | None, temperature: float
) -> None:
    policy = Policy(6, seed=3, tanh_c=tanh_c, temperature=temperature)
    policy.add("op", 3)
    reward, baseline, action = 1.0, 0.25, 2
    loss = reinforce_loss(policy.log_prob([("op", action)]), reward, baseline)
    loss.backward()

    # by hand: logits l = c tanh(z) (or l = z), p = softmax(l), d log p_a / d l = e_a - p,
    # d l / d z = c (1 - tanh(z)^2), z = (W h + b) / T; the loss is -(R - b) log p_a
    z, h = _first_step(policy, "op")
    logits = z if tanh_c is None else tanh_c * torch.tanh(z)
    p = torch.softmax(logits, dim=0)
    dl_dz = torch.ones(3) if tanh_c is None else tanh_c * (1 - torch.tanh(z) ** 2)
    grad_z = -(reward - baseline) * (torch.eye(3)[action] - p) * dl_dz
    head = policy.heads[policy._slot("op")]
    assert torch.allclose(head.bias.grad, grad_z / temperature, atol=1e-6)
    assert torch.allclose(head.weight.grad, torch.outer(grad_z / temperature, h), atol=1e-6)


def test_a_second_decision_does_not_touch_the_first_heads_gradient() -> None:
    policy = Policy(5, seed=0, tanh_c=None)
    policy.add("a", 4)
    policy.add("b", 2)
    reinforce_loss(policy.log_prob([("a", 1), ("b", 0)]), 0.0, 0.5).backward()
    z, _ = _first_step(policy, "a")
    p = torch.softmax(z, dim=0)
    want = -(0.0 - 0.5) * (torch.eye(4)[1] - p)
    assert torch.allclose(policy.heads[policy._slot("a")].bias.grad, want, atol=1e-6)
    assert policy.embeds[policy._slot("b")].weight.grad is None  # b's action feeds nothing


def test_policy_weights_do_not_depend_on_the_order_decisions_were_met() -> None:
    one, two = Policy(8, seed=1), Policy(8, seed=1)
    one.add("a", 3)
    one.add("b", 4)
    two.add("b", 4)
    two.add("a", 3)
    s1, s2 = one.state_dict(), two.state_dict()
    assert s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)
    assert not torch.equal(Policy(8, seed=2).cell.weight_ih, one.cell.weight_ih)


def _cat(v: str) -> dict:
    return {"params": {"op": v}, "distributions": {"op": CategoricalDistribution(["x", "y"])}}


def _replayed(direction: str, sign: float) -> list[Update]:
    sampler = ControllerSampler(seed=0, baseline_decay=0.9)
    study = optuna.create_study(direction=direction, sampler=sampler)
    add = study.add_trial
    add(create_trial(value=sign * 0.5, **_cat("x")))
    add(create_trial(value=sign * 0.7, **_cat("y")))
    rejected = {records.REJECTED: {"budget": "params"}}
    add(create_trial(state=TrialState.PRUNED, user_attrs=rejected, **_cat("x")))
    add(create_trial(state=TrialState.FAIL, user_attrs={records.ERROR: "NaN loss"}, **_cat("y")))
    add(create_trial(state=TrialState.FAIL, **_cat("x")))  # stale (no error): skipped
    add(create_trial(value=sign * 0.2, **_cat("y")))
    # pruned by a pruner after two epochs: its last intermediate value is its reward
    add(
        create_trial(
            state=TrialState.PRUNED, intermediate_values={0: sign * 0.1, 1: sign * 0.3}, **_cat("x")
        )
    )
    return sampler.sync(study)


@pytest.mark.parametrize(("direction", "sign"), [("maximize", 1.0), ("minimize", -1.0)])
def test_rewards_and_baseline_by_hand(direction: str, sign: float) -> None:
    # rewards: 0.5, 0.7, then the rejected and the failed trial get the worst seen (0.5), the
    # stale one is skipped, 0.2, and the pruned trial 0.3; b starts at the first reward and
    # moves b <- 0.9 b + 0.1 R after each.
    b = [0.5]
    for r in (0.5, 0.7, 0.5, 0.5, 0.2):
        b.append(0.9 * b[-1] + 0.1 * r)
    want = [
        (0, 0.5, b[0]),
        (1, 0.7, b[1]),
        (2, 0.5, b[2]),
        (3, 0.5, b[3]),
        (5, 0.2, b[4]),
        (6, 0.3, b[5]),
    ]
    got = _replayed(direction, sign)
    assert [u.number for u in got] == [n for n, _, _ in want]
    for u, (_, r, base) in zip(got, want, strict=True):
        assert u.reward == pytest.approx(r)
        assert u.baseline == pytest.approx(base)
        assert u.advantage == pytest.approx(r - base)


def test_worst_reward_before_any_reward_is_skipped() -> None:
    sampler = ControllerSampler(seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    rejected = {records.REJECTED: {"budget": "params"}}
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs=rejected, **_cat("x")))
    study.add_trial(create_trial(value=1.0, **_cat("y")))
    assert [(u.number, u.advantage) for u in sampler.sync(study)] == [(1, 0.0)]


def test_two_objective_reward_is_minus_the_fraction_that_dominates() -> None:
    sampler = ControllerSampler(seed=0)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for values in ([1.0, 5.0], [2.0, 6.0], [0.5, 7.0], [3.0, 1.0]):
        study.add_trial(create_trial(values=values, **_cat("x")))
    rejected = {records.REJECTED: {"budget": "params"}}
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs=rejected, **_cat("y")))
    # (1,5): none before; (2,6): none of 1 dominates it; (0.5,7): both earlier dominate it;
    # (3,1) dominates all: 0; rejected: -1
    got = [u.reward for u in sampler.sync(study)]
    assert got == pytest.approx([0.0, 0.0, -1.0, 0.0, -1.0])


def test_a_positive_advantage_raises_the_chosen_probability() -> None:
    sampler = ControllerSampler(seed=0, lr=0.05)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.add_trial(create_trial(value=0.0, **_cat("x")))  # sets the baseline
    key = f"op={optuna.distributions.distribution_to_json(CategoricalDistribution(['x', 'y']))}"

    def p_y() -> float:
        policy = sampler.policy(study)
        x, state = policy.start()
        logits, _ = policy.step(x, state, key)
        return float(torch.softmax(logits.detach(), dim=0)[1])

    before = p_y()
    study.add_trial(create_trial(value=1.0, **_cat("y")))  # advantage +1 for "y"
    after = p_y()
    assert after > before
    study.add_trial(create_trial(value=-5.0, **_cat("y")))  # now far below the baseline
    assert p_y() < after


def test_sampled_decisions_are_recorded_in_order_and_replayed() -> None:
    sampler = ControllerSampler(seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def objective(trial: optuna.Trial) -> float:
        width = trial.suggest_int("width", 8, 256, log=True)
        trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.suggest_categorical("act", ["relu", "gelu"])
        trial.suggest_int("fixed", 2, 2)  # one value: not a decision
        return float(width)

    study.optimize(objective, n_trials=6)
    grid_w = choices_of(IntDistribution(8, 256, log=True), 8)
    grid_lr = choices_of(FloatDistribution(1e-4, 1e-1, log=True), 8)
    for t in study.trials:
        assert t.system_attrs[DECISIONS] == ["width", "lr", "act"]
        assert t.params["width"] in grid_w and t.params["lr"] in grid_lr
    assert [u.number for u in sampler.sync(study)] == list(range(6))


def test_discretisation_by_hand() -> None:
    assert choices_of(IntDistribution(1, 4), 8) == [1, 2, 3, 4]
    assert choices_of(IntDistribution(1, 1000, log=True), 4) == [1, 10, 100, 1000]
    # 0..100 step 10 has 11 values > 4: linspace 0, 33.3, 66.7, 100 onto the grid
    assert choices_of(IntDistribution(0, 100, step=10), 4) == [0, 30, 70, 100]
    assert choices_of(FloatDistribution(0.0, 1.0, step=0.25), 8) == [0.0, 0.25, 0.5, 0.75, 1.0]
    got = choices_of(FloatDistribution(1e-4, 1e-1, log=True), 4)
    assert got == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    assert choices_of(FloatDistribution(-1.0, 1.0), 5) == pytest.approx([-1, -0.5, 0, 0.5, 1])
    # a narrow log range gives fewer than n_bins distinct integers
    assert choices_of(IntDistribution(1, 12, log=True), 8) == [1, 2, 3, 4, 6, 8, 12]
    log_grid = [1, 10, 100, 1000]
    d = IntDistribution(1, 1000, log=True)
    # 30: log 3.40 is 1.10 from log 10 and 1.20 from log 100 (linearly it is nearer 10 too)
    assert index_of(d, log_grid, 30) == 1
    # 40: log-nearest 100 (0.92 vs 1.39), though linearly nearer 10
    assert index_of(d, log_grid, 40) == 2
    assert index_of(CategoricalDistribution(["a", None]), ["a", None], None) == 1
    assert math.isclose(sum(choices_of(FloatDistribution(0.0, 1.0), 2)), 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [{"lr": 0}, {"baseline_decay": 1.0}, {"hidden": 0}, {"n_bins": 1}, {"temperature": 0}],
)
def test_bad_settings_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ControllerSampler(**kwargs)
