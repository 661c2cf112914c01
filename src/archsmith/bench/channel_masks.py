"""``archsmith bench channel-masks``: accuracy against FLOPs of input-dependent channel masks.

``masked_cnn`` (Fire Together Wire Together, Elkerdawy et al., CVPR 2022) is trained on digits at
several kept activation masses (``mass``: the mask predictor's self-supervised target keeps the
top channels covering that share of a block's saliency). Each row gives, for one mass, the test
accuracy and the mean FLOPs per sample (each sample's own cost, the predictors included) as a
share of the dense network, mean and standard deviation over seeds (three; ``--quick``: one
seed, fewer epochs and masses).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import torch

from archsmith.bench.registry import BenchContext, register_bench
from archsmith.build import create_model
from archsmith.gating.channel_masks import MaskedCNN
from archsmith.tasks import get_task
from archsmith.train import TrainConfig, fit, seed_everything

__all__ = ["channel_masks", "tradeoff"]

MASSES = (1.0, 0.9, 0.8, 0.6, 0.4)
QUICK_MASSES = (1.0, 0.6)


def tradeoff(
    masses: Sequence[float], *, epochs: int, seed: int, task_name: str = "digits"
) -> list[dict[str, Any]]:
    """Train ``masked_cnn`` once per ``mass``; test accuracy and per-sample FLOPs of each."""
    task = get_task(task_name)
    rows = []
    for mass in masses:
        seed_everything(seed)
        model = create_model("masked_cnn", task=task, mass=mass)
        assert isinstance(model, MaskedCNN)
        # the model's recipe: a fixed budget, no early stopping (archsmith models masked_cnn)
        config = TrainConfig.for_model("masked_cnn", epochs=epochs, seed=seed)
        fit(model, task, config, progress=False)
        model.eval()
        with torch.no_grad():
            pred = model(task.test.x)
        assert model.last_flops is not None  # set by every eval-mode forward
        mean_flops = float(model.last_flops.float().mean())
        rows.append(
            {
                "mass": mass,
                "seed": seed,
                "accuracy": float((pred.argmax(-1) == task.test.y).float().mean()),
                "mean_flops": mean_flops,
                "flops_frac": mean_flops / model.dense_flops,
                "kept_channels": model.kept_share(),
            }
        )
    return rows


def _summary(runs: list[dict[str, Any]], key: str) -> tuple[float, float]:
    values = [r[key] for r in runs]
    return statistics.fmean(values), statistics.pstdev(values)


@register_bench("channel-masks", "input-dependent channel masks (FTWT): accuracy vs FLOPs")
def channel_masks(ctx: BenchContext) -> list[dict[str, Any]]:
    full = (MASSES, (0, 1, 2), TrainConfig.for_model("masked_cnn").epochs)  # the recipe's 20
    masses, seeds, epochs = (QUICK_MASSES, (0,), 5) if ctx.quick else full
    runs = [r for seed in seeds for r in tradeoff(masses, epochs=epochs, seed=seed)]
    rows = []
    for mass in masses:
        mine = [r for r in runs if r["mass"] == mass]
        acc, acc_std = _summary(mine, "accuracy")
        frac, _ = _summary(mine, "flops_frac")
        rows.append(
            {
                "model": "masked_cnn",
                "mass": mass,
                "seeds": len(mine),
                "epochs": epochs,
                "test_acc_mean": acc,
                "test_acc_std": acc_std,
                "mean_flops": _summary(mine, "mean_flops")[0],
                "flops_frac": frac,
                "kept_channels": _summary(mine, "kept_channels")[0],
            }
        )
    return rows
