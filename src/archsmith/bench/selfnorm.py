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

Training settings: every run has the same budget (``epochs``, patience 15, the seed); the rest
comes from the model's registered recipe (:mod:`archsmith.recipe`), so that
``archsmith train --model snn`` trains as this benchmark does. The SNN's recipe is lr 1e-4 and no
weight decay (``archsmith models snn``: decay pulls the weights below the LeCun scale that keeps
activations at the (0, 1) fixed point, and a deep SNN without normalization needs the smaller
step); its rows use ``dropout=0``. The normalized networks are ``mlp``, whose recipe is the
trainer's defaults; this benchmark gives them lr 1e-3 (weight decay 1e-2 is the default).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
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
class Variant:
    """One model of the comparison: a registered model, its options, and the training settings
    this benchmark sets on top of the model's recipe."""

    model: str
    options: dict[str, Any]
    train: dict[str, Any] = field(default_factory=dict)


#: the normalized networks' step (mlp's recipe is the trainer's defaults, lr 3e-3)
MLP_TRAIN = {"lr": 1e-3}

VARIANTS = {
    "snn": Variant("snn", {"dropout": 0.0}),
    "relu_bn": Variant("mlp", {"norm_layer": "batchnorm", "act_layer": "relu"}, MLP_TRAIN),
    "relu_ln": Variant("mlp", {"norm_layer": "layernorm", "act_layer": "relu"}, MLP_TRAIN),
    "evonorm": Variant("mlp", {"norm_layer": "evonorm_b0", "act_layer": "none"}, MLP_TRAIN),
}
#: every run's budget
PATIENCE = 15

#: benchmark name -> (task name, task options)
DATASETS = {
    "digits": ("digits-flat", {"standardize": True}),
    "wdbc": ("wdbc", {}),
    "wine": ("wine", {}),
}


def build(variant: Variant, task: Task, depth: int) -> nn.Module:
    """The variant's network at ``depth`` hidden layers of :data:`WIDTH` for ``task``."""
    if variant.model == "snn":
        return create_model("snn", task=task, width=WIDTH, depth=depth, **variant.options)
    return create_model(variant.model, task=task, hidden=[WIDTH] * depth, **variant.options)


def train_config(variant: Variant, *, epochs: int, seed: int) -> TrainConfig:
    """The variant's training settings: the budget and its own settings over its model's
    recipe."""
    return TrainConfig.for_model(
        variant.model, epochs=epochs, patience=PATIENCE, seed=seed, **variant.train
    )


def _step(model: nn.Module, task: Task, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        task.loss(model(x), y).backward()

    return step


def _step_times(
    task: Task, depths: tuple[int, ...], ctx: BenchContext
) -> dict[tuple[str, int], float]:
    """Median training-step ms of every variant at every depth on a batch of ``task``; the
    variants of one depth are timed interleaved."""
    x, y = task.example_batch(BATCH)
    out: dict[tuple[str, int], float] = {}
    for depth in depths:
        steps = {}
        for name, variant in VARIANTS.items():
            seed_everything(0)
            steps[name] = _step(build(variant, task, depth), task, x, y)
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
            for name, variant in VARIANTS.items():
                accs = []
                for seed in seeds:
                    seed_everything(seed)
                    model = build(variant, task, depth)
                    config = train_config(variant, epochs=epochs, seed=seed)
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
