"""archsmith.bench.mqar: a tiny grid (row keys, parameter matching, learning beyond chance) and
the registered case's grids."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from archsmith.bench import mqar as mqar_mod
from archsmith.bench.mqar import FULL_GRID, QUICK_GRID, Recipe, matched_dim, mqar_rows
from archsmith.bench.registry import BenchContext, get_bench
from archsmith.build import create_model
from archsmith.tasks import get_task

KEYS = {
    "model",
    "arch",
    "seq_len",
    "num_kv",
    "dim",
    "params",
    "params_ratio",
    "accuracy",
    "val_accuracy",
    "chance",
    "epochs",
    "batch_size",
    "steps",
    "train_s",
}
# one key-value pair: recall is "copy the token at position 1", learnable in a few hundred steps
TINY = Recipe(
    dim=16,
    num_heads=1,
    mlp_ratio=1.0,
    vocab_size=16,
    train_tokens=256 * 8,  # 256 sequences of 8 tokens
    batch_tokens=16 * 8,  # 16 per step
    epochs=8,
    lr=1e-2,
)


@pytest.fixture(scope="module")
def tiny_rows() -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: extra threads only spin on a shared machine
    try:
        return mqar_rows([(8, 1)], TINY, echo=False)
    finally:
        torch.set_num_threads(threads)


def test_rows_cover_every_model_with_their_keys(tiny_rows: list[dict]) -> None:
    assert [r["model"] for r in tiny_rows] == ["gla", "gla_conv", "attention", "hybrid"]
    for row in tiny_rows:
        assert set(row) == KEYS
        assert (row["seq_len"], row["num_kv"]) == (8, 1)
        assert 0.0 <= row["accuracy"] <= 1.0 and row["train_s"] > 0
        assert row["chance"] == 1 / 8
        assert row["batch_size"] == 16 and row["steps"] == 8 * 16  # 8 epochs of 256 / 16
    assert [r["arch"] for r in tiny_rows] == [
        "gla_lm pattern=g short_conv=0",
        "gla_lm pattern=g short_conv=4",
        "transformer",
        "gla_lm pattern=gs short_conv=0",
    ]


def test_parameter_counts_are_matched(tiny_rows: list[dict]) -> None:
    reference = tiny_rows[2]
    assert reference["dim"] == TINY.dim and reference["params_ratio"] == 1.0
    for row in tiny_rows:
        model, options = mqar_mod.MODELS[row["model"]]
        task = get_task("mqar", seq_len=8, num_kv_pairs=1, vocab_size=16, num_examples=256)
        built = create_model(
            model, task=task, dim=row["dim"], num_heads=1, mlp_ratio=1.0, depth=2, **options
        )
        assert row["params"] == sum(p.numel() for p in built.parameters())
        # at width 16 one unit of width moves the count by ~10%: matched to the nearest width
        assert abs(row["params"] / reference["params"] - 1) < 0.1


def test_default_recipe_matches_parameters_closely() -> None:
    recipe = mqar_mod.FULL_RECIPE
    for seq_len, num_kv in FULL_GRID:
        task = get_task("mqar", seq_len=seq_len, num_kv_pairs=num_kv, vocab_size=recipe.vocab_size)
        target = sum(p.numel() for p in mqar_mod._build("attention", task, recipe, 64).parameters())
        for name in ("gla", "gla_conv", "hybrid"):
            dim = matched_dim(name, task, recipe, target)
            params = sum(p.numel() for p in mqar_mod._build(name, task, recipe, dim).parameters())
            assert abs(params / target - 1) < 0.02, (name, seq_len, dim)


def test_every_model_beats_chance_on_a_single_pair(tiny_rows: list[dict]) -> None:
    # deterministic (seeded data, weights and batches); chance is 1/8
    for row in tiny_rows:
        assert row["accuracy"] > 3 * row["chance"], row


def test_matched_dim_picks_the_closest_width() -> None:
    task = get_task("mqar", seq_len=8, num_kv_pairs=1, vocab_size=16, num_examples=8)
    recipe = replace(TINY, dim=32)

    def params(dim: int) -> int:
        m = create_model(
            "gla_lm", task=task, dim=dim, num_heads=1, mlp_ratio=1.0, pattern="g", short_conv=0
        )
        return sum(p.numel() for p in m.parameters())

    target = params(24)
    assert matched_dim("gla", task, recipe, target) == 24
    width = matched_dim("gla", task, recipe, target + 1)
    assert all(abs(params(width) - target - 1) <= abs(params(d) - target - 1) for d in (23, 24, 25))


def test_registered_case_uses_quick_and_full_grids(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple] = []

    def record(grid: tuple, recipe: Recipe) -> list[dict]:
        seen.append(grid)
        return []

    monkeypatch.setattr(mqar_mod, "mqar_rows", record)
    entry = get_bench("mqar")
    assert entry.fn(BenchContext(quick=True)) == []
    assert entry.fn(BenchContext(quick=False)) == []
    assert seen == [QUICK_GRID, FULL_GRID]
    assert len(FULL_GRID) >= 3 and len({kv for _, kv in FULL_GRID}) >= 3
