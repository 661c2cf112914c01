"""What a task is: input spec, three fixed splits, a loss and metrics.

A :class:`Task` is a concrete class configured by its constructor; the task modules
(:mod:`~archsmith.tasks.digits`, :mod:`~archsmith.tasks.mqar`, ...) build one and hand it back.
Losses and metrics depend only on the task's ``kind``:

==============  ===============================  ========================================
kind            output of the model              loss / metrics
==============  ===============================  ========================================
classification  logits ``[N, C]``                cross-entropy / accuracy
regression      ``[N]`` or ``[N, 1]``            MSE on standardized y / rmse (original
                                                 units), r2
survival        risk scores ``[N]`` or ``[N, 1]``  Cox partial likelihood (Breslow) / c_index
                (``[N, 1 + C]`` with an aux label) (+ cross-entropy / aux_accuracy)
sequence        logits ``[N, T, V]``             cross-entropy ignoring -100 / accuracy
segmentation    logits ``[N, K, *S]`` (labels    per-voxel cross-entropy / dice (mean over
                ``y: [N, *S]``)                  foreground classes), iou, voxel_accuracy
==============  ===============================  ========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.tasks import losses, metrics

__all__ = ["KINDS", "SPLITS", "InputSpec", "Split", "Task", "TaskKind"]

TaskKind = Literal["classification", "regression", "survival", "sequence", "segmentation"]
KINDS: tuple[str, ...] = ("classification", "regression", "survival", "sequence", "segmentation")
SPLITS: tuple[str, ...] = ("train", "val", "test")

# (metric names, primary metric, greater is better) for each kind.
_METRICS: dict[str, tuple[tuple[str, ...], str, bool]] = {
    "classification": (("accuracy",), "accuracy", True),
    "regression": (("rmse", "r2"), "rmse", False),
    "survival": (("c_index",), "c_index", True),
    "sequence": (("accuracy",), "accuracy", True),
    "segmentation": (("dice", "iou", "voxel_accuracy"), "dice", True),
}


@dataclass(frozen=True)
class InputSpec:
    """The per-sample input a model receives.

    Attributes:
        kind: ``"image"`` (``shape = (C, H, W)``), ``"vector"`` (``(F,)``) or ``"tokens"``
            (``(T,)`` integer ids in ``[0, vocab_size)``).
        shape: per-sample shape, without the batch dimension.
        vocab_size: number of token ids; tokens inputs only.
    """

    kind: Literal["image", "vector", "tokens"]
    shape: tuple[int, ...]
    vocab_size: int | None = None

    def __post_init__(self) -> None:
        # Programming errors (task authors), so plain ValueError.
        if self.kind not in ("image", "vector", "tokens"):
            raise ValueError(f"unknown input kind {self.kind!r}")
        if (self.kind == "tokens") != (self.vocab_size is not None):
            raise ValueError("vocab_size is required for tokens inputs and only for them")


@dataclass
class Split:
    """One split of a task's data.

    Attributes:
        x: ``[N, *input.shape]``; float32 for image/vector inputs, int64 for tokens.
        y: classification int64 ``[N]``; regression float32 ``[N]`` (standardized with the
            train mean/std); survival float32 ``[N, 2]`` columns ``(time, event)`` (``[N, 3]``
            ``(time, event, class)`` with an auxiliary class label); sequence
            int64 ``[N, T]`` with ``-100`` where nothing is predicted.
    """

    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}")

    def __len__(self) -> int:
        return int(self.x.shape[0])


class Task:
    """A named learning problem with fixed train/val/test splits.

    Args:
        name: the name :func:`~archsmith.tasks.get_task` knows it by (``"digits"``,
            ``"csv:data.csv"``).
        kind: ``"classification"``, ``"regression"``, ``"survival"``, ``"sequence"`` or
            ``"segmentation"``.
        input: the per-sample input.
        train, val, test: the splits (fixed: the same on every call).
        num_outputs: model outputs per sample (per position for sequence tasks). Defaults to 1
            for regression and survival and to ``input.vocab_size`` for sequence tasks;
            classification and segmentation tasks must give the number of classes.
        description: one line for the ``archsmith tasks`` table.
        target_mean, target_std: the train statistics regression targets were standardized
            with; metrics undo them so ``rmse`` is in the original units.
        classes: the original class labels, ``classes[k]`` for label ``k`` (classification).
        feature_names: names of the input features (tabular tasks).
        aux_classes: survival tasks only: the labels of an auxiliary classification target
            (``y[:, 2]`` holds their indices), learned jointly with the risk by a second head
            (SeNMo); the model then outputs ``[N, 1 + len(aux_classes)]``.
        aux_weight: weight of the auxiliary cross-entropy in the loss.
        options: the options :func:`~archsmith.tasks.get_task` built it with, so that
            ``get_task(task.name, **task.options)`` rebuilds it (a spec stores both).

    Treat a task as read-only: :func:`~archsmith.tasks.get_task` caches and shares it.
    """

    def __init__(
        self,
        name: str,
        kind: TaskKind,
        input: InputSpec,
        train: Split,
        val: Split,
        test: Split,
        *,
        num_outputs: int | None = None,
        description: str = "",
        target_mean: float = 0.0,
        target_std: float = 1.0,
        classes: tuple[Any, ...] | None = None,
        feature_names: tuple[str, ...] | None = None,
        options: Mapping[str, Any] | None = None,
        aux_classes: tuple[Any, ...] | None = None,
        aux_weight: float = 1.0,
    ) -> None:
        if kind not in _METRICS:
            raise ValueError(f"unknown task kind {kind!r}; kinds: {KINDS}")
        if aux_classes is not None and (kind != "survival" or len(aux_classes) < 2):
            raise ValueError("aux_classes: survival tasks only, with two classes or more")
        if num_outputs is None:
            if kind in ("classification", "segmentation"):
                raise ValueError(f"{kind} tasks need num_outputs (the number of classes)")
            num_outputs = input.vocab_size if kind == "sequence" else 1
            if aux_classes is not None:
                num_outputs = 1 + len(aux_classes)
        assert num_outputs is not None
        self.name = name
        self.kind: TaskKind = kind
        self.input = input
        self.train, self.val, self.test = train, val, test
        self.num_outputs: int = int(num_outputs)
        self.description = description
        self.metric_names, self.primary_metric, self.greater_is_better = _METRICS[kind]
        self.aux_classes = aux_classes
        self.aux_weight = float(aux_weight)
        if aux_classes is not None:
            self.metric_names = (*self.metric_names, "aux_accuracy")
        self.target_mean = float(target_mean)
        self.target_std = float(target_std)
        self.classes = classes
        self.feature_names = feature_names
        self.options: dict[str, Any] = dict(options or {})

    def __repr__(self) -> str:
        sizes = "/".join(str(len(self.split(s))) for s in SPLITS)
        return (
            f"Task({self.name!r}, kind={self.kind!r}, input={self.input.kind}"
            f"{list(self.input.shape)}, outputs={self.num_outputs}, train/val/test={sizes})"
        )

    def split(self, name: str) -> Split:
        """The split called ``name``: ``"train"``, ``"val"`` or ``"test"``."""
        if name not in SPLITS:
            raise ArchsmithError(
                f"unknown split {name!r}{did_you_mean(str(name), SPLITS)} "
                f"(splits: {', '.join(SPLITS)})"
            )
        split: Split = getattr(self, name)
        return split

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Scalar differentiable loss of model ``output`` against ``target`` (a batch's ``y``)."""
        if self.kind == "classification":
            return losses.classification_loss(output, target)
        if self.kind == "regression":
            return losses.regression_loss(output, target)
        if self.kind == "survival":
            return losses.survival_loss(output, target, self.aux_weight)
        if self.kind == "segmentation":
            return losses.segmentation_loss(output, target)
        return losses.sequence_loss(output, target)

    @torch.no_grad()
    def metrics(self, output: Tensor, target: Tensor) -> dict[str, float]:
        """The task's metrics over a whole split's ``output`` (batches concatenated)."""
        output, target = output.detach(), target.detach()
        if self.kind == "classification":
            return {"accuracy": metrics.accuracy(output, target)}
        if self.kind == "regression":
            return metrics.regression_metrics(output, target, scale=self.target_std)
        if self.kind == "survival":
            result = {"c_index": metrics.c_index(output, target)}
            logits = losses.split_survival_output(output, target)[1]
            if logits is not None:
                result["aux_accuracy"] = metrics.accuracy(logits, target[:, 2].long())
            return result
        if self.kind == "segmentation":
            return metrics.segmentation_metrics(output, target)
        return {"accuracy": metrics.sequence_accuracy(output, target)}

    def model_kwargs(self) -> dict[str, Any]:
        """The context a model factory needs: ``in_shape``, ``num_outputs`` and, where they
        apply, ``vocab_size`` (tokens input) and ``per_position=True`` (sequence tasks)."""
        kwargs: dict[str, Any] = {"in_shape": self.input.shape, "num_outputs": self.num_outputs}
        if self.input.kind == "tokens":
            kwargs["vocab_size"] = self.input.vocab_size
        if self.kind == "sequence":
            kwargs["per_position"] = True
        return kwargs

    def example_batch(self, size: int = 32, split: str = "train") -> tuple[Tensor, Tensor]:
        """The first ``size`` samples of ``split`` as ``(x, y)`` (fewer if the split is smaller)."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ArchsmithError(f"example batch size must be a positive integer, got {size!r}")
        data = self.split(split)
        return data.x[:size], data.y[:size]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (the ``archsmith tasks`` table reads it)."""
        spec: dict[str, Any] = {"kind": self.input.kind, "shape": list(self.input.shape)}
        if self.input.vocab_size is not None:
            spec["vocab_size"] = self.input.vocab_size
        return {
            "name": self.name,
            "options": dict(self.options),
            "kind": self.kind,
            "input": spec,
            "num_outputs": self.num_outputs,
            "sizes": {s: len(self.split(s)) for s in SPLITS},
            "metrics": list(self.metric_names),
            "primary_metric": self.primary_metric,
            "greater_is_better": self.greater_is_better,
            "description": self.description,
        }
