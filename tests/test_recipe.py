"""Recipes: what a registered model recommends, merged as given > recipe > trainer default."""

from __future__ import annotations

import json
from dataclasses import asdict, fields, replace

import pytest
import torch

from archsmith.build import create_model
from archsmith.errors import ArchsmithError
from archsmith.recipe import RECIPE_SETTINGS, UNSET, Recipe
from archsmith.registry import get_model_entry, list_models
from archsmith.tasks import get_task
from archsmith.train import ResolvedConfig, TrainConfig, fit, resolve_config, seed_everything

DEFAULTS = TrainConfig()


def test_recipe_sets_only_what_it_names_and_none_is_a_value() -> None:
    recipe = Recipe(lr=1e-4, patience=None)
    assert recipe.settings() == {"lr": 1e-4, "patience": None}
    assert recipe.weight_decay is UNSET and not recipe.is_empty()
    assert Recipe().is_empty() and Recipe().settings() == {} and Recipe().describe() == "-"
    assert Recipe(options={"chi": 4}).settings() == {}
    assert recipe.describe() == "lr=0.0001 patience=off"


def test_recipe_settings_are_trainer_fields_but_the_run_ones() -> None:
    # a recipe may set every TrainConfig field except those that belong to a run
    assert set(RECIPE_SETTINGS) == {f.name for f in fields(TrainConfig)} - {
        "seed",
        "eval_batch_size",
    }


def test_recipe_options_are_read_only_and_copied() -> None:
    given = {"chi": 32}
    recipe = Recipe(options=given)
    given["chi"] = 1
    assert recipe.options == {"chi": 32}
    with pytest.raises(TypeError):
        recipe.options["chi"] = 2  # type: ignore[index]


def test_precedence_given_over_recipe_over_default() -> None:
    recipe = Recipe(lr=1e-4, weight_decay=0.0, epochs=60, patience=None)
    settings = resolve_config(recipe, epochs=5, seed=7)
    config = settings.config
    assert (config.lr, config.weight_decay, config.patience) == (1e-4, 0.0, None)  # recipe
    assert (config.epochs, config.seed) == (5, 7)  # given
    assert (config.batch_size, config.weights) == (DEFAULTS.batch_size, DEFAULTS.weights)
    assert settings.sources["lr"] == "recipe" and settings.sources["patience"] == "recipe"
    assert settings.sources["epochs"] == "given" and settings.sources["seed"] == "given"
    assert settings.sources["batch_size"] == "default"
    assert set(settings.sources) == {f.name for f in fields(TrainConfig)}
    assert settings.from_recipe() == {"lr": 1e-4, "weight_decay": 0.0, "patience": None}


def test_for_model_reads_the_registered_recipe() -> None:
    config = TrainConfig.for_model("snn", seed=2)
    assert (config.lr, config.weight_decay, config.epochs, config.patience) == (1e-4, 0.0, 60, 15)
    assert config.seed == 2
    # no recipe: exactly the trainer's defaults
    assert TrainConfig.for_model("mlp") == DEFAULTS
    assert TrainConfig.for_model(None, lr=1.0) == TrainConfig(lr=1.0)
    assert resolve_config(get_model_entry("snn")).model == "snn"


def test_unknown_setting_and_bad_values_are_one_line() -> None:
    with pytest.raises(ArchsmithError, match=r"unknown training setting 'lrr' \(did you mean 'lr'"):
        TrainConfig.for_model("mlp", lrr=1e-3)
    with pytest.raises(ArchsmithError, match=r"^epochs: invalid value 0$"):
        TrainConfig.for_model("snn", epochs=0)

    entry = replace(get_model_entry("mlp"), name="bad_mlp", recipe=Recipe(lr=-1.0))
    with pytest.raises(ArchsmithError, match=r"^recipe of model 'bad_mlp': lr: invalid value -1"):
        TrainConfig.for_model(entry)
    with pytest.raises(ArchsmithError, match=r"^recipe: weights: invalid value 'mean'"):
        TrainConfig.for_model(Recipe(weights="mean"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name", [n for n in list_models() if not get_model_entry(n).recipe.is_empty()]
)
def test_every_registered_recipe_is_valid(name: str) -> None:
    """Each recipe makes a valid config, and its options are options of its model (building
    the model on its default task checks names and values)."""
    entry = get_model_entry(name)
    config = TrainConfig.for_model(name)
    for key, value in entry.recipe.settings().items():
        assert getattr(config, key) == value
    assert entry.recipe.note, "a recipe says why"
    if entry.recipe.options:
        model = create_model(name, **dict(entry.recipe.options))
        assert model.archsmith_spec.options == dict(entry.recipe.options)


def test_resolved_config_round_trips_through_the_run_directory(tmp_path) -> None:
    settings = resolve_config("snn", epochs=3, batch_size="full")
    settings.save(tmp_path)
    data = json.loads((tmp_path / "train.json").read_text())
    assert data["config"] == asdict(settings.config)
    assert data["model"] == "snn" and data["recipe"]["lr"] == 1e-4
    loaded = ResolvedConfig.load(tmp_path)
    assert loaded is not None
    assert loaded.config == settings.config
    assert loaded.sources == settings.sources
    assert loaded.recipe.settings() == get_model_entry("snn").recipe.settings()
    more = loaded.override(epochs=9)
    assert more.config.epochs == 9 and more.sources["epochs"] == "given"
    assert more.config.lr == 1e-4 and more.sources["lr"] == "recipe"
    assert ResolvedConfig.load(tmp_path / "nowhere") is None
    (tmp_path / "train.json").write_text("{broken")
    with pytest.raises(ArchsmithError, match=r"not a readable train\.json"):
        ResolvedConfig.load(tmp_path)


def test_full_batch_is_one_step_of_the_whole_split() -> None:
    """``batch_size="full"`` trains exactly as the integer batch size of the split would."""
    task = get_task("breast-cancer-survival")
    results = []
    for batch_size in ("full", len(task.train)):
        seed_everything(0)
        model = create_model("cox_mlp", task=task, hidden=[8])
        config = TrainConfig(epochs=3, batch_size=batch_size, lr=1e-2, patience=None)
        fit(model, task, config, progress=False)
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(results[0], results[1])
    assert TrainConfig(batch_size="full").steps_batch(134) == 134
    assert TrainConfig(batch_size=64).steps_batch(134) == 64
    with pytest.raises(ArchsmithError, match="batch_size: invalid value 'half'"):
        TrainConfig(batch_size="half")  # type: ignore[arg-type]
