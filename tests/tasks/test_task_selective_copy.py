"""selective-copy: targets are the scattered data tokens in order (naive re-scan)."""

from __future__ import annotations

import pytest
import torch

from archsmith.errors import ArchsmithError
from archsmith.tasks import get_task


@pytest.mark.parametrize(("seq_len", "m", "vocab"), [(64, 8, 16), (10, 10, 3), (20, 1, 5)])
def test_selective_copy_targets_are_the_data_tokens_in_order(
    seq_len: int, m: int, vocab: int
) -> None:
    task = get_task(
        "selective-copy", seq_len=seq_len, num_tokens=m, vocab_size=vocab, num_examples=100
    )
    assert task.kind == "sequence" and task.num_outputs == vocab
    assert task.input.kind == "tokens" and task.input.shape == (seq_len + m,)
    for name in ("train", "val", "test"):
        s = task.split(name)
        assert s.x.dtype == torch.int64 and s.y.shape == (len(s), seq_len + m)
        for x, y in zip(s.x.tolist(), s.y.tolist(), strict=True):
            data = [tok for tok in x[:seq_len] if tok != 0]
            assert len(data) == m
            assert all(1 <= tok <= vocab - 2 for tok in data)
            assert x[seq_len:] == [vocab - 1] * m
            assert y[:seq_len] == [-100] * seq_len
            assert y[seq_len:] == data


def test_selective_copy_positions_vary() -> None:
    task = get_task("selective-copy", num_examples=50)
    layouts = {tuple((row[:64] != 0).nonzero().flatten().tolist()) for row in task.train.x}
    assert len(layouts) == 50


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seq_len": 4, "num_tokens": 5}, r"selective-copy\.seq_len: must be >= num_tokens = 5"),
        ({"vocab_size": 2}, r"selective-copy\.vocab_size: must be >= 3"),
        ({"num_tokens": 0}, r"selective-copy\.num_tokens: must be >= 1"),
    ],
)
def test_selective_copy_bad_options(options: dict[str, int], message: str) -> None:
    with pytest.raises(ArchsmithError, match=message):
        get_task("selective-copy", **options)
