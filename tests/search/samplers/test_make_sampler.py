"""``make_sampler``: each strategy name gives its sampler with the stated settings; a wrong name,
option or value is one line."""

from __future__ import annotations

import optuna
import pytest
from optuna.samplers import NSGAIISampler, RandomSampler, TPESampler

from archsmith.errors import ArchsmithError
from archsmith.search.samplers import (
    STRATEGIES,
    ControllerSampler,
    RandomSearchSampler,
    RegularizedEvolutionSampler,
    make_sampler,
)

KINDS = {
    "random": RandomSearchSampler,
    "re": RegularizedEvolutionSampler,
    "tpe": TPESampler,
    "nsga2": NSGAIISampler,
    "rl": ControllerSampler,
}


@pytest.mark.parametrize("name", STRATEGIES)
def test_each_name_gives_its_sampler(name: str) -> None:
    assert set(KINDS) == set(STRATEGIES)
    for multi in (False, True):
        assert isinstance(make_sampler(name, seed=0, multi_objective=multi), KINDS[name])


def test_random_is_optunas_random_sampler() -> None:
    assert isinstance(make_sampler("random", seed=0), RandomSampler)


def test_tpe_is_multivariate_grouped_with_a_constant_liar() -> None:
    for multi in (False, True):
        tpe = make_sampler("tpe", seed=0, multi_objective=multi)
        assert isinstance(tpe, TPESampler)
        study = optuna.create_study(directions=["minimize"] * (2 if multi else 1))
        assert tpe._is_multivariate(study)
        assert tpe._constant_liar and tpe._group
    assert not make_sampler("tpe", seed=0, constant_liar=False)._constant_liar


def test_options_reach_the_constructor() -> None:
    re = make_sampler("re", seed=0, population_size=8, sample_size=3)
    assert isinstance(re, RegularizedEvolutionSampler)
    assert (re._population_size, re._sample_size) == (8, 3)
    nsga = make_sampler("nsga2", seed=0, population_size=12)
    assert isinstance(nsga, NSGAIISampler) and nsga._population_size == 12


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_sampler("rll", seed=0), "unknown strategy 'rll' (did you mean 'rl'?)"),
        (lambda: make_sampler("evo", seed=0), "unknown strategy 'evo'; choose one of random, re"),
        (
            lambda: make_sampler("re", seed=0, populaton_size=4),
            "strategy 're' has no option 'populaton_size' (did you mean 'population_size'?)",
        ),
        (lambda: make_sampler("re", seed=0, sample_size=0), "strategy 're': sample_size must be"),
        (lambda: make_sampler("rl", seed=0, lr=-1.0), "strategy 'rl': lr must be positive"),
    ],
)
def test_bad_input_is_one_line(call, message: str) -> None:
    with pytest.raises(ArchsmithError) as err:
        call()
    assert message in str(err.value)
    assert "\n" not in str(err.value)
