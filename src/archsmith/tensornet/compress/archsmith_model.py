"""An archsmith model trained on a task (e.g. ``archsmith train --task digits-flat --model mlp``)
as a compression subject.

Compressed layers: every ``nn.Linear`` with at least :data:`MIN_FEATURES` inputs and outputs (a
layer with a single input or output is already rank one; the classifier head is compressed too,
and the sensitivity allocation keeps it near full rank when it matters). Healing distils the original
model's outputs (MSE on logits) on the task's training inputs; the report gives the task's
metrics on its test split for the original and the compressed model, and the drop of the primary
metric.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsmith.build import build
from archsmith.checkpoint import load_model
from archsmith.errors import ArchsmithError
from archsmith.spec import load_spec
from archsmith.tasks import get_task
from archsmith.tensornet.compress.subject import Subject
from archsmith.tensornet.compress.surgery import linear_layers

__all__ = ["MIN_FEATURES", "TaskModelSubject", "load_run", "rebuild_task_model"]

MIN_FEATURES = 2
SPEC_FILE, MODEL_FILE = "spec.json", "model.safetensors"


def load_run(run_dir: str | Path) -> tuple[nn.Module, Any]:
    """Model (with its trained weights) and task of an ``archsmith train`` run directory."""
    run = Path(run_dir)
    if not run.is_dir():
        raise ArchsmithError(f"--checkpoint: {str(run)!r} is not a directory")
    for name in (SPEC_FILE, MODEL_FILE):
        if not (run / name).exists():
            raise ArchsmithError(
                f"--checkpoint: {str(run)!r} has no {name} (give an 'archsmith train' run directory)"
            )
    spec = load_spec(run / SPEC_FILE)
    if spec.task is None:
        raise ArchsmithError(f"--checkpoint: {str(run / SPEC_FILE)!r} names no task")
    task = get_task(spec.task, **spec.task_options)
    model = build(spec, task=task)
    load_model(run / MODEL_FILE, model)
    return model.eval(), task


def rebuild_task_model(directory: Path, source: dict[str, Any]) -> nn.Module:
    """The dense skeleton saved by :meth:`TaskModelSubject.save_skeleton` (untrained weights)."""
    return build(load_spec(directory / SPEC_FILE)).eval()


class TaskModelSubject(Subject):
    """An archsmith model and its task.

    Args:
        model: the trained model (compressed in place; a frozen copy is the reference).
        task: its task (train inputs heal, test split evaluates).
        num_calibration: training inputs used for rank selection.
    """

    output_name = "model output"

    def __init__(
        self, model: nn.Module, task: Any, *, label: str, num_calibration: int = 256
    ) -> None:
        self.model = model.eval()
        self.teacher = copy.deepcopy(model).eval().requires_grad_(False)
        self.task, self.label = task, label
        x = task.train.x
        self._calibration = [x[i : i + 64] for i in range(0, min(num_calibration, len(x)), 64)]
        self._original = self._metrics(self.teacher)

    def eligible(self, model: nn.Module) -> dict[str, nn.Linear]:
        return linear_layers(model, lambda _, m: min(m.in_features, m.out_features) >= MIN_FEATURES)

    def calibration_batches(self) -> list[Any]:
        return self._calibration

    def outputs(self, model: nn.Module, batch: Any) -> torch.Tensor:
        out: torch.Tensor = model(batch)
        return out

    def heal_batch(self, step: int, batch_size: int, seed: int) -> Any:
        n = len(self.task.train.x)
        epoch, start = divmod(step * batch_size, n)
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        idx = torch.randperm(n, generator=gen)[start : start + batch_size]
        return self.task.train.x[idx]

    def distill_loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """MSE between the model's outputs and the original's (logits for a classifier)."""
        with torch.no_grad():
            target = self.teacher(batch)
        return F.mse_loss(model(batch), target)

    @torch.no_grad()
    def _metrics(self, model: nn.Module) -> dict[str, float]:
        model.eval()
        test = self.task.test
        out = torch.cat([model(test.x[i : i + 512]) for i in range(0, len(test.x), 512)])
        return {k: float(v) for k, v in self.task.metrics(out, test.y).items()}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        metrics = self._metrics(model)
        primary = self.task.primary_metric
        sign = 1.0 if self.task.greater_is_better else -1.0
        return {**metrics, f"{primary}_drop": sign * (self._original[primary] - metrics[primary])}

    def latency_batch(self) -> Any:
        return self.task.test.x[:64]

    def source(self) -> dict[str, Any]:
        return {"kind": "task_model", "task": self.task.name}

    def save_skeleton(self, out_dir: Path) -> None:
        spec = getattr(self.model, "archsmith_spec", None)
        if spec is None:
            raise ArchsmithError("compress: the model carries no archsmith spec to rebuild it from")
        spec.save(out_dir / SPEC_FILE)
