"""``spheres3d``: synthetic 3D segmentation of noisy spheres, small enough for a CPU.

Each sample is a volume ``x: [1, D, H, W]`` (``D = H = W = size``) holding a few solid spheres
of random centre, radius and class on an empty background, and its per-voxel labels
``y: [D, H, W]`` (0 = background, ``1 .. num_classes - 1`` = sphere classes; a later sphere
covers an earlier one where they overlap). Class ``k`` has the clean intensity
``k / (num_classes - 1)`` (background 0); Gaussian noise of standard deviation ``noise`` is
added to every voxel, so a single voxel is ambiguous and a model has to pool its neighbourhood,
which is what a U-Net's multi-scale context is for.

The task kind is ``"segmentation"``: the model outputs per-voxel logits
``[N, num_classes, D, H, W]``, the loss is the per-voxel cross-entropy, and the metrics are the
mean Dice (primary) and mean IoU over the sphere classes, and the voxel accuracy. Dice and IoU
are computed over a whole split (all voxels of all volumes pooled, per class), the usual
"global" form.

Splits come from their own random streams, ``numpy.random.default_rng([seed, k])`` for
``k`` = 0, 1, 2 (train, val, test), as the other generated tasks do.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from archsmith.errors import ArchsmithError
from archsmith.options import Range
from archsmith.tasks.base import InputSpec, Split, Task
from archsmith.tasks.registry import register_task

__all__ = [
    "SegmentationTask",
    "dice_iou",
    "make_spheres",
    "segmentation_loss",
    "spheres3d",
]

#: Number of validation and of test volumes.
EVAL_VOLUMES = 64


def make_spheres(
    n: int,
    rng: np.random.Generator,
    *,
    size: int,
    num_classes: int,
    max_spheres: int,
    noise: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` volumes ``x: [n, 1, size, size, size]`` float32 and labels ``y: [n, size, size,
    size]`` int64.

    Every volume gets 1 to ``max_spheres`` spheres; radii are uniform in
    ``[max(1.5, size / 8), size / 3]`` and centres uniform inside the volume.
    """
    grid = np.arange(size, dtype=np.float64)
    zz, yy, xx = np.meshgrid(grid, grid, grid, indexing="ij")  # [size]*3 each
    y = np.zeros((n, size, size, size), dtype=np.int64)
    x = np.zeros((n, size, size, size), dtype=np.float64)
    levels = np.arange(num_classes, dtype=np.float64) / (num_classes - 1)  # [K]
    low_r, high_r = max(1.5, size / 8), max(1.5, size / 3)
    # one volume at a time, noise included: the first m volumes of a split do not depend on n
    for i in range(n):
        for _ in range(int(rng.integers(1, max_spheres + 1))):
            centre = rng.uniform(0, size - 1, size=3)
            radius = rng.uniform(low_r, high_r)
            label = rng.integers(1, num_classes)
            dist2 = (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2
            y[i][dist2 <= radius**2] = label
        x[i] = levels[y[i]] + noise * rng.standard_normal((size, size, size))
    return x[:, None].astype(np.float32), y


def segmentation_loss(output: Tensor, target: Tensor) -> Tensor:
    """Mean per-voxel cross-entropy of logits ``output: [N, K, *S]`` against labels
    ``target: [N, *S]``."""
    if output.dim() != target.dim() + 1 or output.shape[2:] != target.shape[1:]:
        raise ArchsmithError(
            f"segmentation output must have shape [{target.shape[0]}, classes, "
            f"{', '.join(map(str, target.shape[1:]))}], got {list(output.shape)}"
        )
    return F.cross_entropy(output, target)


def dice_iou(pred: Tensor, target: Tensor, num_classes: int) -> tuple[list[float], list[float]]:
    """Per-class Dice ``2|P & G| / (|P| + |G|)`` and IoU ``|P & G| / |P | G|`` of label maps
    ``pred`` and ``target`` (same shape, every voxel pooled) for classes ``0 .. K-1``; ``nan``
    for a class absent from both."""
    p = pred.reshape(-1)
    g = target.reshape(-1)
    # [K, K] confusion counts in one pass: row = true class, column = predicted class
    confusion = torch.bincount(g * num_classes + p, minlength=num_classes**2)
    confusion = confusion.reshape(num_classes, num_classes).double()
    inter = confusion.diagonal()
    pred_count, true_count = confusion.sum(0), confusion.sum(1)
    dice = [
        float(2 * i / (a + b)) if a + b > 0 else math.nan
        for i, a, b in zip(inter, pred_count, true_count, strict=True)
    ]
    iou = [
        float(i / (a + b - i)) if a + b > 0 else math.nan
        for i, a, b in zip(inter, pred_count, true_count, strict=True)
    ]
    return dice, iou


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


class SegmentationTask(Task):
    """A per-voxel classification task: kind ``"segmentation"``.

    ``Task`` knows four kinds; this subclass adds a fifth by overriding the loss and the
    metrics, so a task of this kind only pairs with models registered for
    ``task_kinds=("segmentation",)``.

    The model maps ``x: [N, C, *S]`` to logits ``[N, num_outputs, *S]``; ``y: [N, *S]`` int64.
    """

    def __init__(
        self,
        name: str,
        input: InputSpec,
        train: Split,
        val: Split,
        test: Split,
        *,
        num_classes: int,
        description: str = "",
    ) -> None:
        super().__init__(
            name,
            "classification",
            input,
            train,
            val,
            test,
            num_outputs=num_classes,
            description=description,
            classes=tuple(range(num_classes)),
        )
        self.kind = cast(Any, "segmentation")
        self.metric_names = ("dice", "iou", "voxel_accuracy")
        self.primary_metric = "dice"
        self.greater_is_better = True

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Mean per-voxel cross-entropy (see :func:`segmentation_loss`)."""
        return segmentation_loss(output, target)

    @torch.no_grad()
    def metrics(self, output: Tensor, target: Tensor) -> dict[str, float]:
        """``dice`` and ``iou``: means over the foreground classes (1 .. K-1) present in
        prediction or truth; ``voxel_accuracy``: share of voxels labelled right."""
        output, target = output.detach(), target.detach()
        segmentation_loss(output, target)  # shape check only
        if target.numel() == 0:
            return {"dice": math.nan, "iou": math.nan, "voxel_accuracy": math.nan}
        pred = output.argmax(dim=1)
        dice, iou = dice_iou(pred, target, self.num_outputs)
        return {
            "dice": _nanmean(dice[1:]),
            "iou": _nanmean(iou[1:]),
            "voxel_accuracy": float((pred == target).double().mean()),
        }


@register_task("spheres3d", "noisy 3D volumes [1, S, S, S] of spheres; per-voxel class labels")
def spheres3d(
    *,
    size: Annotated[int, Range(min=4, max=128)] = 16,
    num_classes: Annotated[int, Range(min=2, max=16)] = 3,
    max_spheres: Annotated[int, Range(min=1)] = 6,
    noise: Annotated[float, Range(min=0.0)] = 0.35,
    num_examples: Annotated[int, Range(min=1)] = 256,
    seed: int = 0,
) -> Task:
    """Segmentation of ``num_examples`` training volumes (64 each for val and test).

    Args:
        size: side ``S`` of the cubic volume (16: 4096 voxels).
        num_classes: labels including the background (3: background and two sphere classes).
        max_spheres: spheres per volume, 1 to this many.
        noise: standard deviation of the Gaussian noise on every voxel (the class intensities
            are ``k / (num_classes - 1)``, so neighbouring classes are ``1 / (num_classes - 1)``
            apart).
        num_examples: training volumes.
        seed: data seed.
    """
    splits = []
    for k, n in enumerate((num_examples, EVAL_VOLUMES, EVAL_VOLUMES)):
        x, y = make_spheres(
            n,
            np.random.default_rng([seed, k]),
            size=size,
            num_classes=num_classes,
            max_spheres=max_spheres,
            noise=noise,
        )
        splits.append(Split(torch.from_numpy(x), torch.from_numpy(y)))
    spec = InputSpec("image", (1, size, size, size))
    return SegmentationTask("spheres3d", spec, *splits, num_classes=num_classes)
