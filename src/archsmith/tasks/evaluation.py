"""A model's metrics on one split of a task."""

from __future__ import annotations

import torch
from torch import nn

from archsmith.tasks.base import Task

__all__ = ["evaluate"]


@torch.no_grad()
def evaluate(
    model: nn.Module, task: Task, split: str = "test", batch_size: int = 512
) -> dict[str, float]:
    """The task's metrics and mean loss of ``model`` on ``split`` (eval mode, no gradients)."""
    data = task.split(split)
    was_training = model.training
    model.eval()
    try:
        outputs = [model(data.x[i : i + batch_size]) for i in range(0, len(data), batch_size)]
    finally:
        model.train(was_training)
    output = torch.cat(outputs)
    metrics = dict(task.metrics(output, data.y))
    metrics["loss"] = float(task.loss(output, data.y))
    return metrics
