"""``digits`` / ``digits-flat``: scikit-learn's 8x8 handwritten digits, 10 classes.

1797 grey-scale images with pixel values 0..16 (``sklearn.datasets.load_digits``, bundled with
scikit-learn, no download). Pixels are scaled to [0, 1] by dividing by 16: a fixed scale known in
advance, so no statistics are fitted. With ``standardize=True`` every pixel is instead z-scored
with the train split's statistics (constant border pixels become 0), the input a
self-normalizing network expects. Both tasks use the same stratified split, so they hold
the same samples in the same order and differ only in the input shape.
"""

from __future__ import annotations

import numpy as np
import torch

from archsmith.tasks.base import InputSpec, Split, Task
from archsmith.tasks.registry import register_task
from archsmith.tasks.splits import split_indices
from archsmith.tasks.standardize import standardize_splits

__all__ = ["digits", "digits_flat"]


def _load(split_seed: int) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """Images ``[1797, 8, 8]`` in [0, 1], labels ``[1797]`` and the (train, val, test) indices."""
    from sklearn.datasets import load_digits  # late: keeps `import archsmith.tasks` light

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)
    labels = data.target.astype(np.int64)
    return images, labels, split_indices(len(labels), stratify=labels, seed=split_seed)


def _task(name: str, image: bool, split_seed: int, standardize: bool) -> Task:
    images, labels, parts = _load(split_seed)
    if standardize:
        flat = images.reshape(len(images), -1)
        images = standardize_splits(flat, parts[0]).astype(np.float32).reshape(images.shape)
    x = images[:, None] if image else images.reshape(len(images), -1)  # [N,1,8,8] or [N,64]
    splits = [Split(torch.from_numpy(x[i]), torch.from_numpy(labels[i])) for i in parts]
    spec = InputSpec("image", (1, 8, 8)) if image else InputSpec("vector", (64,))
    return Task(name, "classification", spec, *splits, num_outputs=10)


@register_task("digits", "8x8 handwritten digits as [1, 8, 8] images, 10 classes")
def digits(*, split_seed: int = 0, standardize: bool = False) -> Task:
    """Digits as images ``[1, 8, 8]`` in [0, 1] (or z-scored per pixel with ``standardize``);
    split 70/15/15 stratified by ``split_seed``."""
    return _task("digits", True, split_seed, standardize)


@register_task("digits-flat", "8x8 handwritten digits as 64-pixel vectors, 10 classes")
def digits_flat(*, split_seed: int = 0, standardize: bool = False) -> Task:
    """Digits as vectors ``[64]`` in [0, 1] (row-major pixels; z-scored per pixel with
    ``standardize``); same split as ``digits``."""
    return _task("digits-flat", False, split_seed, standardize)
