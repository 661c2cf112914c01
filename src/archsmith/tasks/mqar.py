"""``mqar``: multi-query associative recall.

Arora et al. 2023, "Zoology: Measuring and Improving Recall in Efficient Language Models". Each
sequence ``[T]`` starts with ``K`` key-value pairs, then queries every key once::

    k1 v1 k2 v2 ... kK vK | 0 0 k2 0 0 0 k1 0 ... 0 kK 0 0

Keys come from ``1 .. V//2 - 1`` and values from ``V//2 .. V-1`` (``V`` = vocab_size), both
drawn without replacement within a sequence; token 0 is padding. As in Zoology, query ``i``
sits at ``2K + 2 * gap_i``, with the gaps drawn without replacement from ``0 .. (T - 2K)//2 - 1``
with probability proportional to ``g ** (a - 1)`` (``g = gap + 1``, ``a = power_a``): a power
law that puts most queries soon after the context and a long tail far from it. The target at a
query's position is its key's value (next-token prediction of the value); elsewhere ``-100``.
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

__all__ = ["make_mqar", "mqar"]


def make_mqar(
    n: int,
    rng: np.random.Generator,
    *,
    seq_len: int,
    vocab_size: int,
    num_kv_pairs: int,
    power_a: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` MQAR sequences: inputs ``[n, seq_len]`` and targets ``[n, seq_len]``, int64.

    Vectorised: sampling without replacement is the top-k of random scores (for the gaps, of
    log-probabilities plus Gumbel noise, which draws the same distribution as sequential
    weighted sampling without replacement).
    """
    k = num_kv_pairs
    half = vocab_size // 2
    keys = 1 + np.argsort(rng.random((n, half - 1)), axis=1)[:, :k]  # [n, k] in 1..half-1
    values = half + np.argsort(rng.random((n, vocab_size - half)), axis=1)[:, :k]  # [n, k]
    space = (seq_len - 2 * k) // 2  # query slots at even offsets after the context
    log_p = (power_a - 1.0) * np.log(np.arange(1, space + 1))  # [space], up to a constant
    scores = log_p + rng.gumbel(size=(n, space))
    gaps = np.argsort(-scores, axis=1)[:, :k]  # [n, k], distinct
    pos = 2 * k + 2 * gaps  # [n, k] query positions

    x = np.zeros((n, seq_len), dtype=np.int64)
    x[:, 0 : 2 * k : 2] = keys
    x[:, 1 : 2 * k : 2] = values
    np.put_along_axis(x, pos, keys, axis=1)
    y = np.full((n, seq_len), IGNORE_INDEX, dtype=np.int64)
    np.put_along_axis(y, pos, values, axis=1)
    return x, y


@register_task("mqar", "multi-query associative recall (Zoology): recall each key's value")
def mqar(
    *,
    seq_len: Annotated[int, Range(min=4)] = 64,
    vocab_size: Annotated[int, Range(min=4)] = 128,
    num_kv_pairs: Annotated[int, Range(min=1)] = 8,
    num_examples: Annotated[int, Range(min=1)] = 4000,
    power_a: Annotated[float, Range(min=0, min_inclusive=False)] = 0.01,
    seed: int = 0,
) -> Task:
    """MQAR with ``num_examples`` training sequences and 500 each for val and test.

    Args:
        seq_len: tokens per sequence ``T``; at least ``4 * num_kv_pairs`` (context + queries).
        vocab_size: token ids ``V``; at least ``2 * (num_kv_pairs + 1)`` so there are
            ``num_kv_pairs`` distinct keys and values besides padding.
        num_kv_pairs: key-value pairs per sequence, all queried.
        num_examples: training sequences.
        power_a: exponent ``a`` of the query-gap power law (Zoology's default 0.01).
        seed: data seed.
    """
    if seq_len < 4 * num_kv_pairs:
        raise ArchsmithError(
            f"mqar.seq_len: must be >= 4 * num_kv_pairs = {4 * num_kv_pairs} to hold the "
            f"context and the queries, got {seq_len}"
        )
    if vocab_size // 2 - 1 < num_kv_pairs:
        raise ArchsmithError(
            f"mqar.vocab_size: must be >= 2 * (num_kv_pairs + 1) = {2 * (num_kv_pairs + 1)} "
            f"for {num_kv_pairs} distinct keys and values, got {vocab_size}"
        )

    def make(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return make_mqar(
            n,
            rng,
            seq_len=seq_len,
            vocab_size=vocab_size,
            num_kv_pairs=num_kv_pairs,
            power_a=power_a,
        )

    return sequence_task("mqar", make, num_examples=num_examples, seed=seed, vocab_size=vocab_size)
