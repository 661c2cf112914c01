"""The benchmarks train with the models' registered recipes, and with the very settings they used
when each kept its own private copy (the numbers below are those copies, from before the move):
moving the recipes changed no benchmark's measurement."""

from __future__ import annotations

import pytest

from archsmith.bench import channel_masks, early_exit, selfnorm
from archsmith.bench import survival as survival_mod
from archsmith.bench.registry import BenchContext
from archsmith.train import TrainConfig


@pytest.mark.parametrize(
    ("variant", "lr", "weight_decay"),
    [("snn", 1e-4, 0.0), ("relu_bn", 1e-3, 1e-2), ("relu_ln", 1e-3, 1e-2), ("evonorm", 1e-3, 1e-2)],
)
def test_selfnorm_settings_are_the_former_private_recipe(
    variant: str, lr: float, weight_decay: float
) -> None:
    config = selfnorm.train_config(selfnorm.VARIANTS[variant], epochs=60, seed=2)
    # formerly TrainConfig(epochs=epochs, lr=recipe.lr, weight_decay=recipe.weight_decay,
    # patience=15, seed=seed)
    assert config == TrainConfig(epochs=60, lr=lr, weight_decay=weight_decay, patience=15, seed=2)
    assert selfnorm.VARIANTS["snn"].options == {"dropout": 0.0}


@pytest.mark.parametrize(
    ("net", "lr", "weight_decay"), [("snn_cox", 1e-3, 0.0), ("relu_bn_cox", 3e-3, 1e-2)]
)
def test_survival_settings_are_the_former_private_recipe(
    net: str, lr: float, weight_decay: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[TrainConfig] = []

    def record(model, task, config, **kwargs):  # the settings instead of the fit
        seen.append(config)
        raise RuntimeError("recorded")

    monkeypatch.setattr(survival_mod, "fit", record)
    data = survival_mod.survival_arrays("breast-cancer-survival")
    fold = survival_mod._folds(data, survival_mod.FULL)[0]
    with pytest.raises(RuntimeError, match="recorded"):
        survival_mod._fit_net(survival_mod.NETS[net], "bcs", fold, survival_mod.FULL)
    # formerly: 100 epochs, the whole training part per step, patience 15, weight averaging
    assert seen[0] == TrainConfig(
        epochs=100,
        batch_size="full",
        lr=lr,
        weight_decay=weight_decay,
        patience=15,
        seed=0,
        weights="swa",
    )


def test_gating_benches_keep_their_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[TrainConfig] = []

    def record(model, task, config, **kwargs):
        seen.append(config)
        raise RuntimeError("recorded")

    monkeypatch.setattr(early_exit, "fit", record)
    monkeypatch.setattr(channel_masks, "fit", record)
    with pytest.raises(RuntimeError):
        early_exit.early_exit(BenchContext(quick=False))
    with pytest.raises(RuntimeError):
        channel_masks.channel_masks(BenchContext(quick=False))
    # formerly TrainConfig(epochs=30 / 20, patience=None, seed=seed)
    assert seen == [TrainConfig(epochs=30, patience=None), TrainConfig(epochs=20, patience=None)]
