"""Regularized evolution against hand-computed cases: who is in the population (ageing, and the
trials that never breed), who wins a tournament (one and two objectives), and that a child is
its parent with exactly one decision changed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial

from archsmith.search import records
from archsmith.search.samplers.evolution import (
    MUTATED,
    PARENT,
    RegularizedEvolutionSampler,
    pick_mutation,
    population,
    tournament_winner,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

DISTS = {
    "a": CategoricalDistribution(["x", "y", "z"]),
    "b": IntDistribution(1, 5),
    "c": FloatDistribution(1e-3, 1.0, log=True),
}


def _params(i: int) -> dict[str, Any]:
    return {"a": "xyz"[i % 3], "b": 1 + i % 5, "c": 10.0 ** -(1 + i % 3)}


def _history(study: optuna.Study) -> None:
    """Trials 0-7 of a maximised study; the feasible complete ones are 0, 1, 3, 6, 7."""
    add = study.add_trial
    add(create_trial(params=_params(0), distributions=DISTS, value=0.9))  # best, but oldest
    add(create_trial(params=_params(1), distributions=DISTS, value=0.2))
    add(
        create_trial(
            params=_params(2),
            distributions=DISTS,
            state=TrialState.PRUNED,
            user_attrs={records.REJECTED: {"budget": "params"}},
            constraints={"params": 0.5},
        )
    )
    add(create_trial(params=_params(3), distributions=DISTS, value=0.5))
    # complete but over a (soft) constraint: infeasible, never a parent despite its value
    add(create_trial(params=_params(4), distributions=DISTS, value=0.95, constraints={"p": 0.1}))
    add(create_trial(params=_params(5), distributions=DISTS, state=TrialState.FAIL))
    add(create_trial(params=_params(6), distributions=DISTS, value=0.4))
    add(create_trial(params=_params(7), distributions=DISTS, value=0.3))


def _suggest_all(trial: optuna.Trial) -> dict[str, Any]:
    trial.suggest_categorical("a", ["x", "y", "z"])
    trial.suggest_int("b", 1, 5)
    trial.suggest_float("c", 1e-3, 1.0, log=True)
    return dict(trial.params)


def test_population_is_the_most_recent_feasible_trials_and_ages() -> None:
    study = optuna.create_study(direction="maximize")
    _history(study)
    trials = study.get_trials()
    assert [t.number for t in population(trials, 3)] == [3, 6, 7]
    assert [t.number for t in population(trials, 10)] == [0, 1, 3, 6, 7]
    study.add_trial(create_trial(params=_params(8), distributions=DISTS, value=0.1))
    # the newcomer joins, the oldest member (3) dies, whatever its value
    assert [t.number for t in population(study.get_trials(), 3)] == [6, 7, 8]


def _fake(number: int, values: list[float]) -> FrozenTrial:
    t = create_trial(values=values)
    t.number = number
    return t


def test_tournament_one_objective_best_drawn_wins_ties_to_first_drawn() -> None:
    members = [_fake(i, [v]) for i, v in enumerate([0.5, 0.9, 0.1, 0.9])]
    up, down = [StudyDirection.MAXIMIZE], [StudyDirection.MINIMIZE]
    assert tournament_winner(members, [0, 2], up).number == 0
    assert tournament_winner(members, [0, 2], down).number == 2
    assert tournament_winner(members, [2, 0, 1], up).number == 1  # 1 is best, not first drawn
    assert tournament_winner(members, [3, 1], up).number == 3  # a tie: the one drawn first
    assert tournament_winner(members, [1, 3], up).number == 1


def test_tournament_two_objectives_rank_then_crowding() -> None:
    # minimise both: A(1,4) B(2,2) C(4,1) form front 0; D(3,3) is dominated by B (front 1);
    # E(5,5) by everything (front 2). In front 0 the extremes A, C have infinite crowding;
    # B's is (4-1)/(4-1) + (4-1)/(4-1) = 2.
    pts = {"A": (1, 4), "B": (2, 2), "C": (4, 1), "D": (3, 3), "E": (5, 5)}
    members = [_fake(i, list(p)) for i, p in enumerate(pts.values())]
    both = [StudyDirection.MINIMIZE] * 2
    name = dict(enumerate(pts))
    assert name[tournament_winner(members, [3, 1], both).number] == "B"  # rank 0 beats rank 1
    assert name[tournament_winner(members, [4, 3], both).number] == "D"  # rank 1 beats rank 2
    assert name[tournament_winner(members, [1, 0], both).number] == "A"  # inf crowding beats 2
    assert name[tournament_winner(members, [2, 0], both).number] == "C"  # inf = inf: first drawn


def test_pick_mutation_chooses_among_parameters_with_a_choice() -> None:
    parent = create_trial(
        params={"a": "x", "fixed": 3, "b": 2},
        distributions={
            "a": DISTS["a"],
            "fixed": IntDistribution(3, 3),
            "b": DISTS["b"],
        },
        value=1.0,
    )
    picks = {pick_mutation(parent, np.random.default_rng(s)) for s in range(50)}
    assert picks == {"a", "b"}  # never the single-valued one
    lone = create_trial(params={"f": 3}, distributions={"f": IntDistribution(3, 3)}, value=1.0)
    assert pick_mutation(lone, np.random.default_rng(0)) is None


def test_child_is_the_tournament_winner_with_one_decision_mutated() -> None:
    # P = S = 3: the tournament sees the whole population {3, 6, 7}; 3 (0.5) wins
    sampler = RegularizedEvolutionSampler(population_size=3, sample_size=3, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    _history(study)
    parent = study.trials[3].params
    mutated_names = set()
    for _ in range(20):
        trial = study.ask()
        child = _suggest_all(trial)
        attrs = study._storage.get_trial_system_attrs(trial._trial_id)
        assert attrs[PARENT] == 3
        differ = {k for k in child if child[k] != parent[k]}
        assert differ == {attrs[MUTATED]}
        mutated_names.add(attrs[MUTATED])
        study.tell(trial, state=TrialState.FAIL)  # keep the population as it is
    assert mutated_names == {"a", "b", "c"}


def test_random_until_the_population_is_full() -> None:
    sampler = RegularizedEvolutionSampler(population_size=6, sample_size=2, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    _history(study)  # five feasible trials < 6
    trial = study.ask()
    _suggest_all(trial)
    assert PARENT not in study._storage.get_trial_system_attrs(trial._trial_id)


def _branchy(trial: optuna.Trial, b_high: int = 5) -> dict[str, Any]:
    op = trial.suggest_categorical("op", ["conv", "attn"])
    if op == "attn":
        trial.suggest_categorical("heads", [1, 2, 4])
    trial.suggest_int("b", 1, b_high)
    trial.suggest_categorical("width", [8])  # one value: never mutated
    return dict(trial.params)


def test_a_mutation_that_opens_a_branch_samples_its_new_parameters() -> None:
    sampler = RegularizedEvolutionSampler(population_size=2, sample_size=2, seed=1)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    d = {
        "op": CategoricalDistribution(["conv", "attn"]),
        "b": IntDistribution(1, 5),
        "width": CategoricalDistribution([8]),
    }
    for v in (1.0, 0.5):
        study.add_trial(
            create_trial(params={"op": "conv", "b": 5, "width": 8}, distributions=d, value=v)
        )
    seen_heads = set()
    for _ in range(30):
        trial = study.ask()
        child = _branchy(trial)
        mutated = study._storage.get_trial_system_attrs(trial._trial_id)[MUTATED]
        assert mutated in {"op", "b"}
        if mutated == "op":
            assert child["op"] == "attn" and child["b"] == 5
            seen_heads.add(child["heads"])  # the parent had no heads: drawn at random
        else:
            assert child["op"] == "conv" and child["b"] != 5 and "heads" not in child
        study.tell(trial, state=TrialState.FAIL)
    assert seen_heads == {1, 2, 4}


def test_a_copied_value_outside_the_childs_range_is_drawn_again() -> None:
    sampler = RegularizedEvolutionSampler(population_size=2, sample_size=2, seed=2)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    d = {"op": CategoricalDistribution(["conv", "attn"]), "b": IntDistribution(1, 5)}
    for v in (1.0, 0.5):
        study.add_trial(create_trial(params={"op": "conv", "b": 5}, distributions=d, value=v))
    for _ in range(10):
        trial = study.ask()
        op = trial.suggest_categorical("op", ["conv", "attn"])
        b = trial.suggest_int("b", 1, 3)  # this space narrowed b: the parent's 5 is out
        assert 1 <= b <= 3 and op in ("conv", "attn")
        study.tell(trial, state=TrialState.FAIL)


def test_a_plan_made_by_another_instance_is_read_back_from_the_storage() -> None:
    """The plan lives in the trial's system attributes: a sampler that did not make it (another
    worker's instance) samples the same child."""
    made, other = (
        RegularizedEvolutionSampler(population_size=3, sample_size=3, seed=4) for _ in "ab"
    )
    study = optuna.create_study(direction="maximize", sampler=made)
    _history(study)
    trial = study.ask()  # plans with `made`
    child_by_other = {
        n: other.sample_independent(study, trial._get_latest_trial(), n, DISTS[n]) for n in DISTS
    }
    assert child_by_other == _suggest_all(trial)


@pytest.mark.parametrize(("p", "s"), [(1, 1), (5, 0), (5, 6)])
def test_bad_sizes_are_refused(p: int, s: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        RegularizedEvolutionSampler(population_size=p, sample_size=s)


def test_log_distribution_mutations_stay_in_range() -> None:
    sampler = RegularizedEvolutionSampler(population_size=3, sample_size=3, seed=9)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    _history(study)
    for _ in range(20):
        trial = study.ask()
        c = _suggest_all(trial)["c"]
        assert 1e-3 <= c <= 1.0 and not math.isnan(c)
        study.tell(trial, state=TrialState.FAIL)
