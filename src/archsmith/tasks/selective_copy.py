"""``selective-copy``: the selective copying task of Mamba.

Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective State Spaces", section 3.1.
``num_tokens`` data tokens sit at random positions of a blank region of ``seq_len`` tokens;
then come ``num_tokens`` marker tokens, and at the ``j``-th marker the model must output the
``j``-th data token. Unlike plain copying the spacing varies, so a model has to select the
content by what it is, not where it is::

    0 0 3 0 0 0 5 0 2 0 0 | M M M      targets at the markers: 3 5 2

Token ids: 0 = blank, ``1 .. V-2`` = data (drawn uniformly, repeats allowed), ``V-1`` = marker.
Sequences are ``seq_len + num_tokens`` long; targets are ``-100`` except at the markers.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np

from archsmith.errors import ArchsmithError
from archsmith.options import Range
from archsmith.tasks.base import Task
from archsmith.tasks.losses import IGNORE_INDEX
from archsmith.tasks.registry import register_task
from archsmith.tasks.synthetic import sequence_task

__all__ = ["make_selective_copy", "selective_copy"]


def make_selective_copy(
    n: int, rng: np.random.Generator, *, seq_len: int, num_tokens: int, vocab_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` sequences ``[n, seq_len + num_tokens]`` and their targets (same shape), int64."""
    m = num_tokens
    tokens = rng.integers(1, vocab_size - 1, size=(n, m))  # [n, m] in 1..V-2
    # m distinct positions per row, sorted so the data tokens keep their order.
    pos = np.sort(np.argsort(rng.random((n, seq_len)), axis=1)[:, :m], axis=1)  # [n, m]
    x = np.zeros((n, seq_len + m), dtype=np.int64)
    np.put_along_axis(x, pos, tokens, axis=1)
    x[:, seq_len:] = vocab_size - 1
    y = np.full((n, seq_len + m), IGNORE_INDEX, dtype=np.int64)
    y[:, seq_len:] = tokens
    return x, y


@register_task("selective-copy", "selective copying (Mamba): copy scattered tokens in order")
def selective_copy(
    *,
    seq_len: Annotated[int, Range(min=1)] = 64,
    num_tokens: Annotated[int, Range(min=1)] = 8,
    vocab_size: Annotated[int, Range(min=3)] = 16,
    num_examples: Annotated[int, Range(min=1)] = 4000,
    seed: int = 0,
) -> Task:
    """Selective copying with ``num_examples`` training sequences and 500 each for val and test.

    Args:
        seq_len: length of the blank region holding the data tokens (at least ``num_tokens``).
        num_tokens: data tokens to copy.
        vocab_size: token ids, blank and marker included (at least 3).
        num_examples: training sequences.
        seed: data seed.
    """
    if seq_len < num_tokens:
        raise ArchsmithError(
            f"selective-copy.seq_len: must be >= num_tokens = {num_tokens} to hold the data "
            f"tokens, got {seq_len}"
        )

    def make(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return make_selective_copy(
            n, rng, seq_len=seq_len, num_tokens=num_tokens, vocab_size=vocab_size
        )

    return sequence_task(
        "selective-copy", make, num_examples=num_examples, seed=seed, vocab_size=vocab_size
    )
