"""``archsmith bench baseline``: the cost table of every baseline model on its task.

Counts (parameters, FLOPs, saved-activation bytes, peak memory) come from
:func:`archsmith.cost.measure`; the forward and training-step times of all models are taken in
one interleaved loop so that the machine's drift hits every model alike, and the achieved
GFLOP/s is set next to this machine's measured float32 matmul rate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from archsmith.bench.registry import BenchContext, register_bench
from archsmith.build import create_model
from archsmith.cost import measure
from archsmith.measure.timing import time_interleaved
from archsmith.registry import get_model_entry, list_models
from archsmith.tasks import Task, get_task
from archsmith.train import seed_everything

BATCH = 64

#: (model, task) pairs: every baseline on its default task plus the digits variants.
CASES = (
    ("mlp", "digits"),
    ("cnn", "digits"),
    ("transformer", "digits"),
    ("transformer", "mqar"),
    ("cox_mlp", "breast-cancer-survival"),
)


def _train_step(
    model: nn.Module, task: Task, x: torch.Tensor, y: torch.Tensor
) -> Callable[[], None]:
    def step() -> None:
        model.zero_grad(set_to_none=True)
        task.loss(model(x), y).backward()

    return step


def _forward(model: nn.Module, x: torch.Tensor) -> Callable[[], None]:
    def forward() -> None:
        with torch.no_grad():
            model(x)

    return forward


@register_bench("baseline", "cost table of the baseline models (params, FLOPs, memory, latency)")
def baseline(ctx: BenchContext) -> list[dict[str, Any]]:
    cases = [c for c in CASES if get_model_entry(c[0]).family == "baseline"]
    extra = [(m, get_model_entry(m).default_task) for m in list_models(family="baseline")]
    cases += [c for c in extra if c not in cases]
    built = []
    for name, task_name in cases:
        seed_everything(0)
        task = get_task(task_name)
        model = create_model(name, task=task)
        x, y = task.example_batch(BATCH)
        cost = measure(model, x, target=y, loss_fn=task.loss, timing=False)
        built.append((f"{name}@{task_name}", model, task, x, y, cost))

    for _, model, *_ in built:
        model.eval()
    fwd = time_interleaved(
        {key: _forward(m, x) for key, m, _, x, _, _ in built},
        repeats=ctx.repeats,
        warmup=ctx.warmup,
    )
    for _, model, *_ in built:
        model.train()
    step = time_interleaved(
        {key: _train_step(m, t, x, y) for key, m, t, x, y, _ in built},
        repeats=ctx.repeats,
        warmup=ctx.warmup,
    )
    peak = ctx.machine.get("matmul_gflops")
    rows = []
    for key, _, task, _, _, cost in built:
        step_ms = step[key].median_ms
        achieved = cost.train_step_flops / (step_ms * 1e6) if step_ms > 0 else None
        rows.append(
            {
                "model": key.split("@")[0],
                "task": task.name,
                "batch": BATCH,
                "params": cost.params,
                "fwd_flops": cost.forward_flops,
                "step_flops": cost.train_step_flops,
                "saved_bytes": cost.saved_activation_bytes,
                "peak_rss_bytes": cost.peak_rss_bytes,
                "fwd_ms": fwd[key].median_ms,
                "step_ms": step_ms,
                "gflops": achieved,
                "peak_gflops": peak,
            }
        )
    return rows
