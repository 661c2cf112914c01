"""Shared plumbing for generated sequence tasks (``mqar``, ``selective-copy``).

Each split is drawn from its own random stream, ``numpy.random.default_rng([seed, k])`` with
``k`` = 0, 1, 2 for train, val, test: the same seed always gives the same data, and val/test do
not change when only the number of training examples does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from archsmith.tasks.base import InputSpec, Split, Task

__all__ = ["EVAL_EXAMPLES", "Generator", "sequence_task"]

#: Number of validation and of test examples of a generated task.
EVAL_EXAMPLES = 500

#: ``make(n, rng) -> (x, y)``: ``n`` sequences ``[n, T]`` and their targets ``[n, T]`` (int64).
Generator = Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]


def sequence_task(
    name: str, make: Generator, *, num_examples: int, seed: int, vocab_size: int
) -> Task:
    """A ``sequence`` task over ``tokens`` inputs with ``num_examples`` training sequences."""
    splits = []
    for k, n in enumerate((num_examples, EVAL_EXAMPLES, EVAL_EXAMPLES)):
        x, y = make(n, np.random.default_rng([seed, k]))
        splits.append(Split(torch.from_numpy(x), torch.from_numpy(y)))
    spec = InputSpec("tokens", (int(splits[0].x.shape[1]),), vocab_size=vocab_size)
    return Task(name, "sequence", spec, *splits, num_outputs=vocab_size)
