"""The default spaces: every sampled design builds for its task, trains one step without NaN,
and comes back identical from its parameters; no choice is dead; hand-made parameter sets give
the specs worked out by hand."""

from __future__ import annotations

import collections
import functools
import json
import subprocess
import sys
from typing import Any

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution, IntDistribution

from archsmith.build import build
from archsmith.errors import ArchsmithError
from archsmith.layers.aux_loss import training_loss
from archsmith.search.spaces import (
    default_space,
    image_space,
    rebuild,
    sequence_space,
    survival_space,
    vector_space,
)
from archsmith.tasks import Task, get_task

optuna.logging.set_verbosity(optuna.logging.WARNING)

# every shipped task a default space covers, with the space it must get
# the registered models each space must reach on the shipped tasks (the families)
MODELS = {
    vector_space: {"early_exit_mlp", "mlp", "snn"},
    image_space: {"cnn", "early_exit_cnn", "masked_cnn", "rev_cnn"},
    sequence_space: {"gla_lm", "rev_transformer", "transformer"},
    survival_space: {"cox_mlp", "snn_cox"},
}

TASKS = {
    "digits-flat": vector_space,
    "wine": vector_space,
    "wdbc": vector_space,
    "digits": image_space,
    "mqar": sequence_space,
    "selective-copy": sequence_space,
    "breast-cancer-survival": survival_space,
}


@functools.cache
def task_of(name: str) -> Task:
    return get_task(name)


def check_design(space: Any, trial: optuna.Trial, task: Task) -> dict[str, Any]:
    """Sample one design, build it, run a training step on the task's batch, rebuild it from
    the trial's parameters alone; returns its spec dict."""
    spec = space(trial, task)
    model = build(spec, task)
    model.train()
    x, y = task.example_batch(8)
    loss = training_loss(model, x, y, task.loss)
    assert torch.isfinite(loss), spec.to_dict()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads), spec.to_dict()
    assert any(g.abs().sum() > 0 for g in grads), spec.to_dict()
    again = rebuild(space, trial.params, task)
    assert again.to_dict() == spec.to_dict()
    return spec.to_dict()


def sample(name: str, sampler: optuna.samplers.BaseSampler, n: int, *, check: bool) -> list:
    """``n`` trials of the task's default space; returns ``(params, distributions, spec)``."""
    task = task_of(name)
    space = default_space(task)
    study = optuna.create_study(sampler=sampler)
    out = []
    for i in range(n):
        trial = study.ask()
        spec = check_design(space, trial, task) if check else space(trial, task).to_dict()
        out.append((dict(trial.params), dict(trial.distributions), spec))
        # any value: the sampler only needs finished trials to model
        study.tell(trial, float(len(json.dumps(spec)) % 97 + i % 5))
    return out


@pytest.mark.parametrize("name", sorted(TASKS))
def test_default_space_dispatches_by_task_kind(name: str) -> None:
    assert default_space(task_of(name)).fn is TASKS[name]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_random_designs_build_train_and_rebuild(name: str) -> None:
    designs = sample(name, optuna.samplers.RandomSampler(seed=1), 24, check=True)
    assert len({json.dumps(spec, sort_keys=True) for *_, spec in designs}) > 12  # not stuck


@pytest.mark.parametrize("name", ["digits", "digits-flat", "mqar", "breast-cancer-survival"])
def test_tpe_designs_build_train_and_rebuild(name: str) -> None:
    sampler = optuna.samplers.TPESampler(seed=2, n_startup_trials=4, multivariate=True)
    sample(name, sampler, 10, check=True)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_declared_choice_is_drawn(name: str) -> None:
    """Over 200 random designs, every categorical choice and every integer value each
    parameter declares shows up: no branch of a space is dead."""
    seen: dict[str, set[Any]] = collections.defaultdict(set)
    declared: dict[str, set[Any]] = collections.defaultdict(set)
    models = set()
    for params, distributions, spec in sample(
        name, optuna.samplers.RandomSampler(seed=0), 200, check=False
    ):
        models.add(spec["model"])
        for key, dist in distributions.items():
            seen[key].add(params[key])
            if isinstance(dist, CategoricalDistribution):
                declared[key] |= set(dist.choices)
            elif isinstance(dist, IntDistribution):
                declared[key] |= set(range(dist.low, dist.high + 1, dist.step))
    assert models == MODELS[TASKS[name]]
    assert declared, "the space declared no discrete choices"
    for key, values in declared.items():
        assert values <= seen[key], (key, values - seen[key])


def test_choices_are_the_same_in_a_fresh_process() -> None:
    """Optuna needs a categorical parameter's choices identical in every worker and resumed
    run: a new interpreter must declare the same distributions for the same parameters."""
    names = ["digits", "digits-flat", "mqar", "breast-cancer-survival"]
    params = {n: sample(n, optuna.samplers.RandomSampler(seed=3), 12, check=False) for n in names}
    here = {
        n: [
            {k: optuna.distributions.distribution_to_json(d) for k, d in dists.items()}
            for _, dists, _ in rows
        ]
        for n, rows in params.items()
    }
    script = f"""
import json, optuna
from archsmith.search.spaces import default_space
from archsmith.tasks import get_task
params = json.loads({json.dumps(json.dumps({n: [p for p, _, _ in rows] for n, rows in params.items()}))})
out = {{}}
for name, rows in params.items():
    task = get_task(name)
    space = default_space(task)
    out[name] = []
    for p in rows:
        trial = optuna.trial.FixedTrial(p)
        space(trial, task)
        out[name].append({{k: optuna.distributions.distribution_to_json(d)
                          for k, d in trial.distributions.items()}})
print(json.dumps(out))
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == here


def fixed(space: Any, name: str, **params: Any) -> dict[str, Any]:
    return rebuild(space, params, task_of(name)).to_dict()


def test_vector_space_maps_parameters_to_registered_models() -> None:
    assert fixed(
        vector_space, "digits-flat", model="mlp", width=32, depth=2, norm="layernorm",
        act="gelu", linear="tt_fast", rank=4,
    ) == {
        "archsmith_spec": 1, "task": "digits-flat", "model": "mlp",
        "options": {"hidden": [32, 32], "norm_layer": "layernorm", "act_layer": "gelu",
                    "linear_layer": "tt_fast", "linear_rank": 4},
    }  # fmt: skip
    assert fixed(vector_space, "wine", model="snn", width=64, depth=3)["options"] == {
        "width": 64, "depth": 3,
    }  # fmt: skip
    exits = fixed(
        vector_space, "wdbc", model="early_exit_mlp", width=16, depth=4, gate="confidence",
        cost_weight=0.25,
    )  # fmt: skip
    assert exits["options"] == {"width": 16, "depth": 4, "gate": "confidence", "cost_weight": 0.25}


def test_image_space_maps_parameters_to_registered_models() -> None:
    rev = fixed(
        image_space, "digits", model="rev_cnn", width=16, stages=3, norm="evonorm_s0",
        act="silu", blocks=2, expand_ratio=2, reversible=True,
    )  # fmt: skip
    assert rev["options"] == {
        "channels": [16, 32, 64], "depths": [2, 2, 2], "expand_ratio": 2, "reversible": True,
        "norm_layer": "evonorm_s0", "act_layer": "silu",
    }  # fmt: skip
    masked = fixed(image_space, "digits", model="masked_cnn", width=8, stages=2, mass=0.8)
    assert masked["options"] == {"channels": [8, 8, 16], "mass": 0.8}  # stem, then 2 stages


def test_sequence_space_picks_the_model_of_each_mixer() -> None:
    common = {"dim": 48, "depth": 2, "heads": 2, "mlp": "moe", "norm": "rmsnorm"}
    base = {"dim": 48, "depth": 2, "num_heads": 2, "mlp_layer": "moe", "norm_layer": "rmsnorm"}
    cases = [
        ({"attention": "softmax", "reversible": False}, "transformer", {"attn_layer": "softmax"}),
        ({"attention": "gla", "reversible": False}, "gla_lm", {}),
        ({"attention": "hybrid"}, "gla_lm", {"pattern": "gs"}),
        ({"attention": "gla", "reversible": True}, "rev_transformer", {"attn_layer": "gla"}),
    ]
    for params, model, extra in cases:
        spec = fixed(sequence_space, "mqar", **common, **params)
        assert (spec["model"], spec["options"]) == (model, {**base, **extra}), params


def test_survival_space_maps_parameters_to_registered_models() -> None:
    spec = fixed(
        survival_space, "breast-cancer-survival", model="cox_mlp", width=48, depth=2,
        dropout=0.30000000000000004, norm="batchnorm", act="relu",
    )  # fmt: skip
    assert spec["options"] == {
        "hidden": [48, 48], "dropout": 0.3, "norm_layer": "batchnorm", "act_layer": "relu",
    }  # fmt: skip


def test_a_task_without_a_default_space_is_one_line() -> None:
    with pytest.raises(ArchsmithError, match="no default search space for task 'spheres3d'") as e:
        default_space(get_task("spheres3d"))
    assert "\n" not in str(e.value) and "--space" in str(e.value)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TASKS))
def test_broad_sweep_of_random_designs(name: str) -> None:
    sample(name, optuna.samplers.RandomSampler(seed=11), 150, check=True)
