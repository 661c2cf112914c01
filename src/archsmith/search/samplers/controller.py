"""A reinforcement-learning controller as an Optuna sampler, in the style of Zoph & Le (2017,
"Neural Architecture Search with Reinforcement Learning") and GraphNAS / Auto-GNN (Gao et al.,
2020; Zhou et al., 2019): a small recurrent policy (:mod:`.policy`) emits the design's decisions
one by one, and REINFORCE with a moving-average baseline moves it towards rewarded designs.

Decisions. Each ``trial.suggest_*`` the space makes is one decision, taken in the order the space
asks for it: categorical choices directly, int and float ranges discretised into at most
``n_bins`` choices (:mod:`.choices`: evenly spaced, in log space for log distributions). The
names the controller decided are recorded, in order, in the trial's system attribute
:data:`DECISIONS` when the trial is told, so the episode can be replayed from the storage (a
trial whose values were all given — enqueued, or a dead worker's re-queued copy — replays its
parameters in the order the storage lists them).

Rewards (per finished trial, in trial-number order):

- feasible, one objective: the objective, negated when it is minimised;
- feasible, several objectives: minus the fraction of earlier feasible trials that dominate it
  (0 for a design on the front so far, -1 for one dominated by every earlier design);
- pruned early by a pruner (one objective): its last reported intermediate value, signed so;
- rejected by a budget, failed, infeasible, or pruned with nothing reported: the worst outcome,
  the lowest reward seen so far (with several objectives, -1); before any reward has been seen
  there is nothing to compare with and the trial is skipped;
- a trial failed only because its worker died is skipped (its re-queued copy counts).

Update. Advantage ``A = R - b``; ``loss = -A sum_t log pi(a_t)``; one Adam step; then
``b <- decay b + (1 - decay) R``. The baseline starts at the first reward (that trial's advantage
is 0, so no step), as in GraphNAS.

State. Nothing a process learnt is kept from other processes: the policy is a deterministic
function of the seed and the finished trials. Each process caches a policy per study and, before
every trial, replays the updates of trials that finished since — strictly in number order and
only up to the first trial still running, so every process that has seen the same finished
prefix holds bit-for-bit the same policy (a resumed study rebuilds it from scratch). With
several workers a finished trial waits for the running trials numbered before it. Sampling
draws come from generators seeded by (seed, trial number, parameter name) (:mod:`.draws`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.storages import BaseStorage
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from archsmith.search import records
from archsmith.search.samplers.choices import choices_of, index_of
from archsmith.search.samplers.draws import fresh_seed, trial_rng
from archsmith.search.samplers.independent import IndependentSampler
from archsmith.search.samplers.outcomes import costs, is_feasible, is_stale
from archsmith.search.samplers.pareto import dominates
from archsmith.search.samplers.policy import Policy, State, reinforce_loss

__all__ = ["DECISIONS", "ControllerSampler", "Update"]

#: system attr: the parameter names the controller decided for the trial, in the order asked
DECISIONS = "archsmith:rl:decisions"


@dataclass(frozen=True)
class Update:
    """One replayed trial: its reward, the baseline it was compared with, the advantage."""

    number: int
    reward: float
    baseline: float
    advantage: float


@dataclass
class _Learner:
    """What one process has replayed of one study."""

    storage: BaseStorage  # held so that the cache key's id() cannot be reused
    policy: Policy
    optimizer: torch.optim.Optimizer
    next_number: int = 0
    baseline: float | None = None
    worst: float | None = None
    front: list[tuple[float, ...]] = field(default_factory=list)  # feasible costs seen
    updates: list[Update] = field(default_factory=list)


@dataclass
class _Episode:
    """The policy's walk through one trial being sampled in this process."""

    x: torch.Tensor
    state: State
    names: list[str] = field(default_factory=list)


def _key(name: str, distribution: BaseDistribution) -> str:
    # a parameter whose range depends on earlier choices gets one decision per range
    return f"{name}={distribution_to_json(distribution)}"


class ControllerSampler(IndependentSampler):
    """The RL controller (see the module docstring).

    Args:
        seed: seeds the policy's initial weights and every draw; ``None`` draws one.
        lr: Adam's learning rate for the policy.
        baseline_decay: the moving-average baseline's decay, in ``[0, 1)``.
        hidden: units of the LSTM cell and the action embeddings.
        n_bins: choices an int or float range is discretised into.
        tanh_c, temperature: the bounded logits of :class:`~.policy.Policy`.
    """

    def __init__(
        self,
        *,
        seed: int | None = None,
        lr: float = 0.01,
        baseline_decay: float = 0.9,
        hidden: int = 32,
        n_bins: int = 8,
        tanh_c: float | None = 2.5,
        temperature: float = 5.0,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"lr must be positive, not {lr}")
        if not 0 <= baseline_decay < 1:
            raise ValueError(f"baseline_decay must be in [0, 1), not {baseline_decay}")
        if hidden < 1 or n_bins < 2:
            raise ValueError(f"hidden must be >= 1 and n_bins >= 2, not {hidden}, {n_bins}")
        if (tanh_c is not None and not tanh_c > 0) or not temperature > 0:
            raise ValueError("tanh_c (or None) and temperature must be positive")
        self._seed = fresh_seed(seed)
        self._lr = lr
        self._decay = baseline_decay
        self._hidden = hidden
        self._n_bins = n_bins
        self._tanh_c = tanh_c
        self._temperature = temperature
        self._learners: dict[tuple[int, int, str], _Learner] = {}
        self._episodes: dict[int, _Episode] = {}
        self._lock = threading.RLock()

    # -- the policy of a study, replayed from its finished trials ---------------------------------

    def _learner(self, study: Study) -> _Learner:
        key = (id(study._storage), study._study_id, study.study_name)
        learner = self._learners.get(key)
        if learner is None:
            policy = Policy(
                self._hidden, self._seed, tanh_c=self._tanh_c, temperature=self._temperature
            )
            # foreach=False: the per-tensor loop, so results do not depend on how parameters
            # are grouped (processes meet decisions in different orders)
            optimizer = torch.optim.Adam(policy.parameters(), lr=self._lr, foreach=False)
            learner = _Learner(study._storage, policy, optimizer)
            self._learners[key] = learner
        return learner

    def _decision(self, learner: _Learner, key: str, n: int) -> None:
        new = learner.policy.add(key, n)
        if new:
            # a parameter gets Adam state only once it has a gradient, so when it joined the
            # optimizer does not matter
            learner.optimizer.add_param_group({"params": new})

    def sync(self, study: Study) -> list[Update]:
        """Replay every trial finished since the last call (in number order, up to the first
        unfinished one); returns all updates so far."""
        with self._lock:
            learner = self._learner(study)
            trials = study.get_trials(deepcopy=False)
            for trial in trials[learner.next_number :]:
                if not trial.state.is_finished():
                    break
                self._apply(learner, trial, study.directions)
                learner.next_number = trial.number + 1
            return list(learner.updates)

    def policy(self, study: Study) -> Policy:
        """The policy after :meth:`sync` of ``study``."""
        self.sync(study)
        return self._learner(study).policy

    def _reward(
        self, learner: _Learner, trial: FrozenTrial, directions: Sequence[StudyDirection]
    ) -> float | None:
        multi = len(directions) > 1
        if is_feasible(trial):
            assert trial.values is not None
            point = costs(trial.values, directions)
            if not multi:
                return -point[0]
            earlier = learner.front
            beaten = sum(dominates(p, point) for p in earlier)
            return -beaten / len(earlier) if earlier else 0.0
        if (
            not multi
            and trial.state == TrialState.PRUNED
            and not records.is_rejected(trial.user_attrs)
            and trial.last_step is not None
        ):
            return -costs([trial.intermediate_values[trial.last_step]], directions)[0]
        if multi:
            return -1.0
        return learner.worst

    def _episode_of(self, learner: _Learner, trial: FrozenTrial) -> list[tuple[str, int]]:
        names = trial.system_attrs.get(DECISIONS)
        if not isinstance(names, list):
            names = list(trial.params)  # every value was given (an enqueued or retried trial)
        decisions = []
        for name in names:
            if name not in trial.params:
                continue
            distribution = trial.distributions[name]
            choices = choices_of(distribution, self._n_bins)
            if len(choices) < 2:
                continue
            key = _key(name, distribution)
            self._decision(learner, key, len(choices))
            decisions.append((key, index_of(distribution, choices, trial.params[name])))
        return decisions

    def _apply(
        self, learner: _Learner, trial: FrozenTrial, directions: Sequence[StudyDirection]
    ) -> None:
        if is_stale(trial):
            return
        reward = self._reward(learner, trial, directions)
        if reward is None:
            return
        if is_feasible(trial):
            assert trial.values is not None
            learner.front.append(costs(trial.values, directions))
        if len(directions) == 1 and (learner.worst is None or reward < learner.worst):
            learner.worst = reward
        decisions = self._episode_of(learner, trial)
        baseline = reward if learner.baseline is None else learner.baseline
        advantage = reward - baseline
        if decisions and advantage != 0.0:
            learner.optimizer.zero_grad(set_to_none=True)
            reinforce_loss(learner.policy.log_prob(decisions), reward, baseline).backward()
            learner.optimizer.step()
        learner.updates.append(Update(trial.number, reward, baseline, advantage))
        learner.baseline = self._decay * baseline + (1.0 - self._decay) * reward

    # -- sampling ---------------------------------------------------------------------------------

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self.sync(study)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        choices = choices_of(param_distribution, self._n_bins)
        if len(choices) == 1:
            return choices[0]
        with self._lock:
            learner = self._learner(study)
            episode = self._episodes.get(trial._trial_id)
            if episode is None:
                x, state = learner.policy.start()
                episode = self._episodes[trial._trial_id] = _Episode(x, state)
            key = _key(param_name, param_distribution)
            self._decision(learner, key, len(choices))
            with torch.no_grad():
                logits, episode.state = learner.policy.step(episode.x, episode.state, key)
                probs = torch.softmax(logits.double(), dim=0).numpy()
            rng = trial_rng(self._seed, trial.number, param_name)
            action = int(rng.choice(len(choices), p=probs / probs.sum()))
            with torch.no_grad():
                episode.x = learner.policy.embed(key, action)
            episode.names.append(param_name)
        value = choices[action]
        return value.item() if isinstance(value, np.generic) else value

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with self._lock:
            episode = self._episodes.pop(trial._trial_id, None)
        if episode is not None and episode.names:
            # once, as the trial is told (before it is marked finished): one storage write per
            # trial, not one per decision. A trial whose worker died is never told, and is
            # skipped by the replay anyway (its re-queued copy counts).
            study._storage.set_trial_system_attr(trial._trial_id, DECISIONS, episode.names)

    def reseed_rng(self) -> None:
        # draws are seeded by the trial number, which threads never share (see .draws)
        pass
