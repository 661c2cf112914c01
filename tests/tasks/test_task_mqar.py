"""mqar: every query's target is its key's value, checked by re-scanning each sequence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from archsmith.errors import ArchsmithError
from archsmith.tasks import get_task


def _rescan(x: list[int], y: list[int], k: int, vocab: int) -> None:
    """Naive check of one sequence against the MQAR layout."""
    context = x[: 2 * k]
    keys, values = context[0::2], context[1::2]
    assert len(set(keys)) == k and len(set(values)) == k
    assert all(1 <= key < vocab // 2 for key in keys)
    assert all(vocab // 2 <= v < vocab for v in values)
    pairs = dict(zip(keys, values, strict=True))
    queried = []
    for t in range(len(x)):
        if t < 2 * k:
            assert y[t] == -100
        elif y[t] != -100:
            assert x[t] in pairs and y[t] == pairs[x[t]]
            queried.append(x[t])
        else:
            assert x[t] == 0  # not a query: padding
    assert sorted(queried) == sorted(keys)  # each key queried exactly once


@pytest.mark.parametrize(
    ("seq_len", "vocab_size", "k"), [(64, 128, 8), (16, 10, 4), (33, 64, 3), (8, 6, 2)]
)
def test_mqar_targets_are_the_values_of_the_queried_keys(
    seq_len: int, vocab_size: int, k: int
) -> None:
    task = get_task(
        "mqar", seq_len=seq_len, vocab_size=vocab_size, num_kv_pairs=k, num_examples=200
    )
    assert task.kind == "sequence" and task.num_outputs == vocab_size
    assert task.input.kind == "tokens" and task.input.shape == (seq_len,)
    assert task.input.vocab_size == vocab_size
    assert (len(task.train), len(task.val), len(task.test)) == (200, 500, 500)
    for name in ("train", "val", "test"):
        s = task.split(name)
        assert s.x.dtype == torch.int64 and s.y.dtype == torch.int64
        assert s.x.shape == s.y.shape == (len(s), seq_len)
        assert torch.equal((s.y != -100).sum(1), torch.full((len(s),), k))
        for x, y in zip(s.x[:100].tolist(), s.y[:100].tolist(), strict=True):
            _rescan(x, y, k, vocab_size)


def test_mqar_query_gaps_follow_a_decaying_power_law() -> None:
    task = get_task("mqar", num_examples=2000)
    k, space = 8, (64 - 16) // 2
    _, cols = torch.nonzero(task.train.y != -100, as_tuple=True)
    gaps = ((cols - 2 * k) // 2).numpy()
    assert np.all((cols.numpy() - 2 * k) % 2 == 0)
    counts = np.bincount(gaps, minlength=space)
    quarter = space // 4
    assert counts[:quarter].sum() > 1.5 * counts[-quarter:].sum()


def test_mqar_is_seeded_and_val_test_do_not_depend_on_train_size() -> None:
    a = get_task("mqar", num_examples=100, seed=5)
    b = get_task("mqar", num_examples=300, seed=5)
    c = get_task("mqar", num_examples=100, seed=6)
    assert torch.equal(a.val.x, b.val.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x) and not torch.equal(a.val.x, c.val.x)
    again = get_task("mqar", num_examples=100, seed=5, seq_len=64)  # same data, new options key
    assert torch.equal(a.train.x, again.train.x) and torch.equal(a.train.y, again.train.y)
    assert a.model_kwargs() == {
        "in_shape": (64,),
        "num_outputs": 128,
        "vocab_size": 128,
        "per_position": True,
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seq_len": 30}, r"mqar\.seq_len: must be >= 4 \* num_kv_pairs = 32"),
        ({"vocab_size": 16}, r"mqar\.vocab_size: must be >= 2 \* \(num_kv_pairs \+ 1\) = 18"),
        ({"num_kv_pairs": 0}, r"mqar\.num_kv_pairs: must be >= 1"),
        ({"num_examples": "many"}, r"mqar\.num_examples: expected an integer"),
        ({"seq_lenght": 32}, r"mqar\.seq_lenght: unknown option \(did you mean 'seq_len'\?\)"),
    ],
)
def test_mqar_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ArchsmithError, match=message):
        get_task("mqar", **options)


def test_sequence_metrics_and_loss_ignore_unlabelled_positions() -> None:
    task = get_task("mqar", num_examples=50)
    _, y = task.example_batch(16)
    logits = torch.randn(16, 64, 128)
    keep = y != -100
    # naive reference: mean cross-entropy and accuracy over the labelled positions only
    logp = torch.log_softmax(logits, -1)
    nll = [-float(logp[i, t, y[i, t]]) for i in range(16) for t in range(64) if keep[i, t]]
    hits = [
        int(logits[i, t].argmax()) == int(y[i, t])
        for i in range(16)
        for t in range(64)
        if keep[i, t]
    ]
    assert abs(float(task.loss(logits, y)) - sum(nll) / len(nll)) < 1e-5
    assert abs(task.metrics(logits, y)["accuracy"] - sum(hits) / len(hits)) < 1e-12
    perfect = torch.nn.functional.one_hot(y.clamp_min(0), 128).float()
    assert task.metrics(perfect, y)["accuracy"] == 1.0
    with pytest.raises(ArchsmithError, match="sequence output"):
        task.loss(logits[:, :10], y)
