"""What the compression pipeline needs to know about one kind of model.

A :class:`Subject` wraps the model being compressed (its dense layers are replaced in place),
its data (calibration, healing and evaluation), the output the compressed model must keep close
to the original's, how to rebuild its dense skeleton from a saved directory, and its report
metrics. Two subjects exist: a sentence encoder (all-MiniLM-L6-v2, :mod:`.minilm`) and any
archsmith model trained on a task (:mod:`.archsmith_model`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["Subject"]


class Subject(ABC):
    """The contract between :func:`~archsmith.tensornet.compress.pipeline.compress` and a model.

    Attributes:
        model: the module whose dense layers are compressed (replaced in place).
        teacher: a frozen copy of the original model (the reference for every comparison).
        label: a short name for tables (``"all-MiniLM-L6-v2"``, ``"mlp on digits-flat"``).
        output_name: what :meth:`outputs` returns, for the report (``"sentence embedding"``).
    """

    model: nn.Module
    teacher: nn.Module
    label: str
    output_name: str

    @abstractmethod
    def eligible(self, model: nn.Module) -> dict[str, nn.Linear]:
        """``{dotted name: nn.Linear}`` of ``model``'s layers to compress."""

    @abstractmethod
    def calibration_batches(self) -> list[Any]:
        """A few batches from the healing data, for rank selection."""

    def probe_batches(self) -> list[Any]:
        """The batches the end-to-end sensitivity probe runs on (default: the calibration
        batches; a subject with an expensive forward pass returns fewer)."""
        return self.calibration_batches()

    @abstractmethod
    def outputs(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The output compared with the original model's: ``[B, D]``."""

    @abstractmethod
    def heal_batch(self, step: int, batch_size: int, seed: int) -> Any:
        """Step ``step``'s healing batch (seeded epochs over the healing data)."""

    @abstractmethod
    def distill_loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The healing loss (a scalar) of ``model`` against :attr:`teacher` on ``batch``."""

    @abstractmethod
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Metrics of ``model`` against the original on held-out data (report columns)."""

    @abstractmethod
    def latency_batch(self) -> Any:
        """A fixed batch to time the original and the compressed model on."""

    @abstractmethod
    def source(self) -> dict[str, Any]:
        """JSON that says what was compressed (saved with the model)."""

    @abstractmethod
    def save_skeleton(self, out_dir: Path) -> None:
        """Write the files that rebuild the dense architecture (not its weights) into ``out_dir``."""
