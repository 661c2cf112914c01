"""``archsmith bench early-exit``: JEI-DNN joint exit gates vs confidence-threshold exits.

On digits, the early-exit CNN (``early_exit_cnn``: three conv stages, an exit head after each)
is trained with the archsmith trainer

- with the joint gate (Regol et al., ICLR 2024) at several compute prices ``cost_weight``
  (lambda), each model then swept over its inference threshold on ``g_l``;
- with the confidence baseline (heads trained on the mean exit loss), swept over the
  max-softmax threshold tau,

for one seed (``--quick``: 10 epochs, one lambda) or three (30 epochs, three lambdas). Each row
is one point of a curve: test accuracy, mean FLOPs per sample (each sample's FLOPs to its exit,
counted by the torch FLOP counter per block, head and gate), that as a fraction of the whole
network, expected calibration error (15 equal-width bins) and the share of samples at each
exit, averaged over seeds.

The PNG (accuracy and ECE against mean FLOPs) is written next to the JSON, with the suffix
``.png``, when the harness tells the case where the JSON goes (``ctx.json_path``); without a
JSON path no PNG is written.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn

from archsmith.bench.registry import BenchContext, register_bench
from archsmith.build import create_model
from archsmith.gating.early_exit import EarlyExitNetwork, expected_calibration_error
from archsmith.gating.early_exit.plot import plot_exit_curves
from archsmith.tasks import Task, get_task
from archsmith.train import TrainConfig, fit, seed_everything

__all__ = ["CONFIDENCE_TAUS", "JOINT_THRESHOLDS", "early_exit", "png_path"]

MODEL, TASK = "early_exit_cnn", "digits"
JOINT_THRESHOLDS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01)
CONFIDENCE_TAUS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999, 1.01)


def png_path(json_path: str | Path) -> Path:
    """Where the plot of a run whose rows go to ``json_path`` is written: same name, ``.png``."""
    return Path(json_path).with_suffix(".png")


def _train(task: Task, gate: str, cost_weight: float, seed: int, epochs: int) -> nn.Module:
    seed_everything(seed)
    model = create_model(MODEL, task=task, gate=gate, cost_weight=cost_weight)
    # the model's recipe: a fixed budget, no early stopping (archsmith models early_exit_cnn)
    fit(model, task, TrainConfig.for_model(MODEL, epochs=epochs, seed=seed), progress=False)
    return model.eval()


@torch.no_grad()
def _point(model: EarlyExitNetwork, task: Task, threshold: float) -> dict[str, Any]:
    """Accuracy, mean FLOPs, ECE and exit shares of ``model`` on the test split."""
    model.threshold = threshold
    x, y = task.test.x, task.test.y
    logits = model(x)
    assert model.last_exit is not None and model.last_flops is not None
    shares = torch.bincount(model.last_exit, minlength=model.num_exits).double() / len(y)
    return {
        "accuracy": float((logits.argmax(-1) == y).double().mean()),
        "mean_flops": float(model.last_flops.mean()),
        "ece": expected_calibration_error(logits.softmax(-1), y),
        "shares": shares.tolist(),
        "full_flops": float(model.exit_flops[-1]),
    }


def _mean_point(points: list[dict[str, Any]]) -> dict[str, Any]:
    shares = [statistics.fmean(s) for s in zip(*(p["shares"] for p in points), strict=True)]
    out: dict[str, Any] = {
        k: statistics.fmean(p[k] for p in points) for k in ("accuracy", "mean_flops", "ece")
    }
    out["accuracy_std"] = (
        statistics.stdev(p["accuracy"] for p in points) if len(points) > 1 else 0.0
    )
    out["flops_frac"] = out["mean_flops"] / points[0]["full_flops"]
    out["exit_shares"] = "/".join(f"{s:.2f}" for s in shares)
    return out


@register_bench(
    "early-exit", "JEI-DNN joint gate vs confidence exits on digits: accuracy, FLOPs, ECE curves"
)
def early_exit(ctx: BenchContext) -> list[dict[str, Any]]:
    seeds = (0,) if ctx.quick else (0, 1, 2)
    epochs = 10 if ctx.quick else TrainConfig.for_model(MODEL).epochs  # the recipe's 30
    cost_weights = (0.1,) if ctx.quick else (0.02, 0.1, 0.5)
    console = Console(stderr=True, highlight=False)
    task = get_task(TASK)

    configs: list[tuple[str, float, tuple[float, ...]]] = [
        ("joint", cw, JOINT_THRESHOLDS) for cw in cost_weights
    ]
    configs.append(("confidence", 0.0, CONFIDENCE_TAUS))
    rows: list[dict[str, Any]] = []
    for gate, cost_weight, thresholds in configs:
        series = f"joint λ={cost_weight:g}" if gate == "joint" else "confidence"
        per_threshold: dict[float, list[dict[str, Any]]] = {t: [] for t in thresholds}
        for seed in seeds:
            model = _train(task, gate, cost_weight, seed, epochs)
            assert isinstance(model, EarlyExitNetwork)
            for t in thresholds:
                per_threshold[t].append(_point(model, task, t))
        for t in thresholds:
            point = _mean_point(per_threshold[t])
            rows.append(
                {
                    "series": series,
                    "model": MODEL,
                    "gate": gate,
                    "cost_weight": cost_weight if gate == "joint" else None,
                    "threshold": t,
                    **point,
                    "seeds": len(seeds),
                }
            )
        best = max((r for r in rows if r["series"] == series), key=lambda r: r["accuracy"])
        console.print(
            f"early-exit: {series}: best accuracy {best['accuracy']:.4f} at "
            f"{best['flops_frac']:.2f} of the network's FLOPs"
        )
    if ctx.json_path is not None:
        path = png_path(ctx.json_path)
        plot_exit_curves(rows, path, title=f"{MODEL} on {TASK}: early exit")
        console.print(f"early-exit: wrote {path}")
    return rows
