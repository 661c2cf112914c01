"""``archsmith bench selfnorm``: self-normalizing MLPs against normalized ReLU MLPs.

On digits (pixels z-scored) and two tabular sets scikit-learn ships (``wdbc``, ``wine``), MLPs of
width 256 and depth 4, 16 and 32 with

- ``snn`` — SELU, LeCun-normal init, no normalization (Klambauer et al., 2017);
- ``relu_bn`` — Linear -> BatchNorm -> ReLU;
- ``relu_ln`` — Linear -> LayerNorm -> ReLU;
- ``evonorm`` — Linear -> EvoNorm-B0 (Liu et al., 2020; it replaces both norm and activation)

are trained with the archsmith trainer (AdamW, cosine schedule, early stopping on validation
accuracy) for three seeds; rows give the mean and standard deviation of test accuracy and the
median training-step time (batch 64; the four models of one depth timed interleaved).

Recipes: the normalized networks use lr 1e-3 and weight decay 1e-2; the SNN uses lr 1e-4 and no
weight decay, since decay pulls the weights below the LeCun scale that keeps activations at the
(0, 1) fixed point, and a deep SNN without normalization needs the smaller step.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from rich.console import Console
from torch import nn

from archsmith.bench.registry import BenchContext, register_bench
from archsmith.build import create_model
from archsmith.measure.timing import time_interleaved
from archsmith.tasks import Task, get_task
from archsmith.train import TrainConfig, fit, seed_everything

WIDTH = 256
BATCH = 64


@dataclass(frozen=True)
class Recipe:
    """How one model family is built and trained in this benchmark."""

    model: str
    options: dict[str, Any]
    lr: float
    weight_decay: float


RECIPES = {
    "snn": Recipe("snn", {"dropout": 0.0}, lr=1e-4, weight_decay=0.0),
    "relu_bn": Recipe("mlp", {"norm_layer": "batchnorm", "act_layer": "relu"}, 1e-3, 1e-2),
    "relu_ln": Recipe("mlp", {"norm_layer": "layernorm", "act_layer": "relu"}, 1e-3, 1e-2),
    "evonorm": Recipe("mlp", {"norm_layer": "evonorm_b0", "act_layer": "none"}, 1e-3, 1e-2),
}

#: benchmark name -> (task name, task options)
DATASETS = {
    "digits": ("digits-flat", {"standardize": True}),
    "wdbc": ("wdbc", {}),
    "wine": ("wine", {}),
}


def build(recipe: Recipe, task: Task, depth: int) -> nn.Module:
    """The recipe's network at ``depth`` hidden layers of :data:`WIDTH` for ``task``."""
    if recipe.model == "snn":
        return create_model("snn", task=task, width=WIDTH, depth=depth, **recipe.options)
    return create_model(recipe.model, task=task, hidden=[WIDTH] * depth, **recipe.options)


def _step(model: nn.Module, task: Task, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        task.loss(model(x), y).backward()

    return step


def _step_times(
    task: Task, depths: tuple[int, ...], ctx: BenchContext
) -> dict[tuple[str, int], float]:
    """Median training-step ms of every recipe at every depth on a batch of ``task``; the
    recipes of one depth are timed interleaved."""
    x, y = task.example_batch(BATCH)
    out: dict[tuple[str, int], float] = {}
    for depth in depths:
        steps = {}
        for name, recipe in RECIPES.items():
            seed_everything(0)
            steps[name] = _step(build(recipe, task, depth), task, x, y)
        timings = time_interleaved(steps, repeats=ctx.repeats, warmup=ctx.warmup)
        out.update({(name, depth): t.median_ms for name, t in timings.items()})
    return out


@register_bench("selfnorm", "SNN vs ReLU+BN / ReLU+LN / EvoNorm MLPs: test accuracy and step time")
def selfnorm(ctx: BenchContext) -> list[dict[str, Any]]:
    depths = (4, 32) if ctx.quick else (4, 16, 32)
    seeds = (0,) if ctx.quick else (0, 1, 2)
    epochs = 15 if ctx.quick else 60
    console = Console(stderr=True, highlight=False)

    rows = []
    for dataset, (task_name, task_options) in DATASETS.items():
        task = get_task(task_name, **task_options)
        step_ms = _step_times(task, depths, ctx)
        for depth in depths:
            for name, recipe in RECIPES.items():
                accs = []
                for seed in seeds:
                    seed_everything(seed)
                    model = build(recipe, task, depth)
                    config = TrainConfig(
                        epochs=epochs,
                        lr=recipe.lr,
                        weight_decay=recipe.weight_decay,
                        patience=15,
                        seed=seed,
                    )
                    accs.append(fit(model, task, config, progress=False).test["accuracy"])
                mean = statistics.fmean(accs)
                std = statistics.stdev(accs) if len(accs) > 1 else 0.0
                console.print(f"selfnorm: {dataset} depth {depth} {name}: {mean:.4f} ± {std:.4f}")
                rows.append(
                    {
                        "dataset": dataset,
                        "model": name,
                        "depth": depth,
                        "test_acc_mean": mean,
                        "test_acc_std": std,
                        "seeds": len(accs),
                        "step_ms": step_ms[(name, depth)],
                    }
                )
    return rows
