"""Random search, the baseline: Optuna's :class:`~optuna.samplers.RandomSampler` with its draws
seeded per trial.

Optuna's random sampler draws from one generator that advances in process memory. Two things
follow: a resumed study whose fresh sampler has the same seed proposes the first session's
designs again, and workers started with one seed propose the same designs as each other. Here
each value comes from a generator seeded by (seed, trial number, parameter name)
(:mod:`.draws`): the same distribution (uniform, log-uniform where the distribution is log), but
a resumed or parallel run continues with new designs, exactly as one uninterrupted process would.
"""

from __future__ import annotations

from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from archsmith.search.samplers.draws import draw, fresh_seed, trial_rng

__all__ = ["RandomSearchSampler"]


class RandomSearchSampler(RandomSampler):
    """Independent uniform draws, seeded by (``seed``, trial number, parameter name)."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self._seed = fresh_seed(seed)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return draw(param_distribution, trial_rng(self._seed, trial.number, param_name))

    def reseed_rng(self) -> None:
        pass  # draws are seeded by the trial number, which threads never share
