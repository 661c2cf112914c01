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

from typing import Annotated

import numpy as np
import torch

from archsmith.options import Range
from archsmith.tasks.base import InputSpec, Split, Task
from archsmith.tasks.registry import register_task

__all__ = ["make_spheres", "spheres3d"]

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
    return Task(
        "spheres3d",
        "segmentation",
        spec,
        *splits,
        num_outputs=num_classes,
        classes=tuple(range(num_classes)),
    )
