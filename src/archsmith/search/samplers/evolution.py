"""Regularized (ageing) evolution as an Optuna sampler (Real et al., 2019, "Regularized Evolution
for Image Classifier Architecture Search", Algorithm 1).

Per new trial:

1. the *population* is the ``population_size`` most recent feasible trials (trial-number order:
   a trial's number is its birth order, so the oldest die first — the ageing that regularizes);
   until it is full, the trial is sampled at random;
2. *tournament*: ``sample_size`` distinct members drawn at random; the best wins (by the study's
   direction; with several objectives, lowest non-dominated rank within the population, then
   largest crowding distance, as NSGA-II's crowded comparison; a tie goes to the member drawn
   first);
3. the child copies the winner's parameters and *mutates exactly one* of them, chosen uniformly
   among the parent's parameters that have more than one value, to a different value of that
   parameter's distribution. Parameters the parent never had (a branch the mutation opened) and
   copied values outside the child's distribution (a space whose ranges depend on earlier
   choices) are sampled at random.

The sampler keeps no search state in memory: the plan of a trial (its parent's number and the
mutated parameter) is derived in :meth:`before_trial` from ``study.get_trials()`` and stored in
the trial's system attributes :data:`PARENT` and :data:`MUTATED`; random draws come from
generators seeded by (seed, trial number, name) (:mod:`.draws`). Several worker processes on one
storage, or a resumed study with a fresh sampler, therefore behave exactly like one process.

Rejected (over-budget), failed and pruned trials never enter the population (:mod:`.outcomes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from archsmith.search.samplers.draws import contains, draw, draw_other, fresh_seed, trial_rng
from archsmith.search.samplers.independent import IndependentSampler
from archsmith.search.samplers.outcomes import costs, is_feasible
from archsmith.search.samplers.pareto import crowding_distances, nondominated_ranks

__all__ = [
    "MUTATED",
    "PARENT",
    "RegularizedEvolutionSampler",
    "pick_mutation",
    "population",
    "tournament_winner",
]

#: system attr of a child trial: its parent's trial number
PARENT = "archsmith:re:parent"
#: system attr of a child trial: the name of the one parameter mutated from the parent
MUTATED = "archsmith:re:mutated"


def population(trials: Sequence[FrozenTrial], size: int) -> list[FrozenTrial]:
    """The ``size`` most recent feasible trials (by number), oldest first."""
    feasible = sorted((t for t in trials if is_feasible(t)), key=lambda t: t.number)
    return feasible[-size:]


def tournament_winner(
    members: Sequence[FrozenTrial],
    drawn: Sequence[int],
    directions: Sequence[StudyDirection],
) -> FrozenTrial:
    """The best of ``members[i] for i in drawn``; ties go to the one drawn first.

    One objective: the best value. Several: lowest non-dominated rank, then largest crowding
    distance, both computed over the whole population ``members``.
    """
    points = [costs(m.values, directions) for m in members]
    if len(directions) == 1:
        keys: list[tuple[float, ...]] = [(p[0],) for p in points]
    else:
        ranks = nondominated_ranks(points)
        crowd = crowding_distances(points, ranks)
        keys = [(float(r), -c) for r, c in zip(ranks, crowd, strict=True)]
    best = min(range(len(drawn)), key=lambda j: (keys[drawn[j]], j))
    return members[drawn[best]]


def pick_mutation(parent: FrozenTrial, rng: Any) -> str | None:
    """The parent's parameter to mutate: uniform over those with more than one value (names in
    sorted order, so storages that list parameters differently agree); ``None`` if none."""
    names = sorted(n for n, d in parent.distributions.items() if not d.single())
    if not names:
        return None
    return names[int(rng.integers(len(names)))]


class RegularizedEvolutionSampler(IndependentSampler):
    """Regularized evolution over any define-by-run space (see the module docstring).

    Args:
        population_size: P, the number of most recent feasible trials that form the population;
            until P feasible trials exist, trials are sampled at random.
        sample_size: S, the tournament size (``1 <= S <= P``; 1 is a random parent); larger is
            greedier.
        seed: seeds every draw (with the trial number); ``None`` draws a seed from the OS.
    """

    def __init__(
        self, *, population_size: int = 20, sample_size: int = 5, seed: int | None = None
    ) -> None:
        if population_size < 2:
            raise ValueError(f"population_size must be >= 2, not {population_size}")
        if not 1 <= sample_size <= population_size:
            raise ValueError(
                f"sample_size must be in 1..population_size={population_size}, not {sample_size}"
            )
        self._population_size = population_size
        self._sample_size = sample_size
        self._seed = fresh_seed(seed)
        # the parent of a trial being sampled, by trial id: a cache of what the storage holds
        self._parents: dict[int, FrozenTrial] = {}

    # -- the plan of one trial ------------------------------------------------------------------

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        if PARENT in trial.system_attrs:
            return  # planned already (a re-run of before_trial on the same trial)
        members = population(
            study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), self._population_size
        )
        if len(members) < self._population_size:
            return  # the population is still filling: this trial is random
        rng = trial_rng(self._seed, trial.number, "tournament")
        drawn = [int(i) for i in rng.choice(len(members), size=self._sample_size, replace=False)]
        parent = tournament_winner(members, drawn, study.directions)
        mutated = pick_mutation(parent, trial_rng(self._seed, trial.number, "mutation"))
        storage = study._storage
        storage.set_trial_system_attr(trial._trial_id, PARENT, parent.number)
        storage.set_trial_system_attr(trial._trial_id, MUTATED, mutated)
        self._parents[trial._trial_id] = parent

    def _parent_of(self, study: Study, trial: FrozenTrial) -> tuple[FrozenTrial | None, Any]:
        attrs = trial.system_attrs
        if PARENT not in attrs:
            return None, None
        parent = self._parents.get(trial._trial_id)
        if parent is None:  # planned by another process or sampler instance: read it back
            storage = study._storage
            parent_id = storage.get_trial_id_from_study_id_trial_number(
                study._study_id, int(attrs[PARENT])
            )
            parent = storage.get_trial(parent_id)
            self._parents[trial._trial_id] = parent
        return parent, attrs.get(MUTATED)

    # -- sampling -------------------------------------------------------------------------------

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        rng = trial_rng(self._seed, trial.number, param_name)
        parent, mutated = self._parent_of(study, trial)
        if parent is None or param_name not in parent.params:
            return draw(param_distribution, rng)
        value = parent.params[param_name]
        if param_name == mutated:
            return draw_other(param_distribution, value, rng)
        if contains(param_distribution, value):
            return value
        return draw(param_distribution, rng)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._parents.pop(trial._trial_id, None)

    def reseed_rng(self) -> None:
        # Optuna calls this for n_jobs > 1 so that threads do not repeat each other's draws;
        # draws here are seeded by the trial number, which threads never share.
        pass
