"""Search strategies, each an Optuna sampler, so every strategy runs on the same ask/tell loop,
storage, workers, resume and reports.

=========  ===========================================================================
``random``  the baseline: independent uniform draws (:class:`.RandomSearchSampler`, Optuna's
            random sampler with draws seeded per trial so that resume and workers continue)
``re``      regularized evolution (Real et al., 2019): tournament, ageing, one-decision
            mutation (:class:`.RegularizedEvolutionSampler`)
``tpe``     Optuna's TPE: multivariate and grouped (one joint model per set of parameters
            that occur together, for conditional spaces), constant liar for parallel workers
            (multivariate and constant liar are Optuna 5's defaults for one objective; set here
            for several objectives too)
``nsga2``   Optuna's NSGA-II
``rl``      a recurrent controller trained by REINFORCE, GraphNAS style
            (:class:`.ControllerSampler`)
=========  ===========================================================================

Every strategy treats budget-rejected (``PRUNED`` + ``records.REJECTED``) and failed trials as
the worst outcome: Optuna's TPE and NSGA-II rank infeasible and pruned trials below feasible
ones or leave them out of the population; archsmith's own never breed from them.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

from optuna.exceptions import ExperimentalWarning
from optuna.samplers import BaseSampler, NSGAIISampler, TPESampler

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.search.samplers.controller import ControllerSampler
from archsmith.search.samplers.evolution import RegularizedEvolutionSampler
from archsmith.search.samplers.random_search import RandomSearchSampler

__all__ = [
    "STRATEGIES",
    "TRIAL_SEEDED",
    "ControllerSampler",
    "RandomSearchSampler",
    "RegularizedEvolutionSampler",
    "make_sampler",
]

STRATEGIES = ("random", "re", "tpe", "nsga2", "rl")

#: strategies whose draws are seeded by (seed, trial number), with no generator advancing in
#: memory: workers on one storage may share one seed (their trials' numbers differ anyway), and
#: should for ``rl``, so that every worker replays the finished trials into the same policy.
#: Optuna's TPE and NSGA-II keep a generator per process: give each worker its own seed.
TRIAL_SEEDED = frozenset({"random", "re", "rl"})


def _tpe(*, seed: int | None, **options: Any) -> BaseSampler:
    # Optuna 5 makes TPE multivariate for one objective only and independent for several;
    # archsmith's decisions interact (a width matters with a depth), so both get the joint model.
    # group=True fits one joint model per set of parameters that occur together: without it a
    # conditional branch's parameters (absent from some trials) fall back to independent draws,
    # and on the sampler tests' toy space multivariate TPE then stalls on one seed in ten (733
    # trials to the best design) where grouped TPE finds it within 64 on all ten.
    options = {"multivariate": True, "group": True, "constant_liar": True, **options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # group is experimental in Optuna 5
        return TPESampler(seed=seed, **options)


_FACTORIES: dict[str, Callable[..., BaseSampler]] = {
    "random": RandomSearchSampler,
    "re": RegularizedEvolutionSampler,
    "tpe": _tpe,
    "nsga2": NSGAIISampler,
    "rl": ControllerSampler,
}

_SIGNATURES: dict[str, Callable[..., Any]] = {"tpe": TPESampler}


def make_sampler(
    name: str, *, seed: int | None, multi_objective: bool = False, **options: Any
) -> BaseSampler:
    """The sampler of strategy ``name`` seeded with ``seed``; ``options`` go to its constructor.

    ``multi_objective`` says whether the study has several objectives. Every strategy here
    handles both and reads the directions from the study, so no choice depends on it today; it
    is taken so that a strategy that cannot do several objectives can refuse in one line.
    """
    if name not in _FACTORIES:
        raise ArchsmithError(
            f"unknown strategy {name!r}{did_you_mean(name, STRATEGIES)}; "
            f"choose one of {', '.join(STRATEGIES)}"
        )
    allowed = set(inspect.signature(_SIGNATURES.get(name, _FACTORIES[name])).parameters) - {
        "self",
        "seed",
    }
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ArchsmithError(
            f"strategy {name!r} has no option {unknown[0]!r}{did_you_mean(unknown[0], allowed)}"
        )
    try:
        return _FACTORIES[name](seed=seed, **options)
    except (ValueError, TypeError) as err:
        raise ArchsmithError(f"strategy {name!r}: {err}") from None
