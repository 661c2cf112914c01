"""The base of archsmith's own samplers: every decision is taken where the space asks for it.

Define-by-run spaces are conditional (a branch's parameters exist only once it is chosen), so
regularized evolution and the controller sample parameter by parameter in
``sample_independent`` and have no joint ("relative") search space for Optuna to infer.
"""

from __future__ import annotations

from typing import Any

from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial

__all__ = ["IndependentSampler"]


class IndependentSampler(BaseSampler):
    """A sampler with no relative search space; subclasses define ``sample_independent``."""

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}
