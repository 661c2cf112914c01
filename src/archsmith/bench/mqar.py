"""``archsmith bench mqar``: associative recall of GLA, softmax attention and their hybrid.

Multi-query associative recall (Arora et al., 2023, "Zoology"; :mod:`archsmith.tasks.mqar`) at
several sequence lengths and key-value counts, for three two-layer models of equal parameter
count, trained with the archsmith trainer (:func:`archsmith.train.fit`):

- ``gla`` — ``gla_lm``, GLA in every block (Yang et al., 2024), the paper's layer (no short
  convolution);
- ``gla_conv`` — the same with a kernel-4 causal depthwise convolution on ``q, k, v``
  (flash-linear-attention's ``use_short_conv``; ``gla_lm``'s default). Zoology (Arora et al.,
  2023) finds such local mixing is what gated/linear recurrences need to learn recall at small
  width: it lets a key token's features carry the token before it;
- ``attention`` — ``transformer``, causal softmax attention (the reference: an induction head
  solves MQAR exactly);
- ``hybrid`` — ``gla_lm`` with ``pattern="gs"``: a GLA block (no short convolution), then a
  softmax block.

Parameter counts are matched by width: ``attention`` uses :attr:`Recipe.dim`; each other model
takes the width (a multiple of its head count within ``dim +- 16``) whose parameter count is
closest to it. Rows report ``params`` and ``params_ratio`` (to ``attention`` in that setting).

Rows: ``model``, ``arch`` (registered name and options), ``seq_len``, ``num_kv``, ``dim``,
``params``, ``params_ratio``, ``accuracy`` (test accuracy over the query positions, of the
weights with the best validation accuracy), ``val_accuracy``, ``chance`` (one over the number of
values), ``epochs``, ``batch_size``, ``steps``, ``train_s`` (wall-clock seconds of :func:`fit`).

Linear attention recalls through a fixed-size state, so at small width it is expected to fall
behind softmax attention as ``num_kv`` grows (Zoology, section 3; the GLA paper, section 6).
Measured (one thread, seed 0): ``gla`` without the short convolution stays at ``1 / num_kv``
(0.253 at T=64/4, 0.132 at 128/8 with the quick recipe; 0.059 at 256/16 with the full one)
while ``gla_conv`` reaches 0.998, 0.996 and 0.941; at 256/16 the full recipe's ``attention``
(0.060) and ``hybrid`` (0.056) did not learn the task either.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from rich.console import Console
from torch import nn

from archsmith.bench.registry import BenchContext, register_bench
from archsmith.build import create_model
from archsmith.tasks import Task, get_task
from archsmith.train import TrainConfig, fit, seed_everything

__all__ = ["FULL_GRID", "MODELS", "QUICK_GRID", "Recipe", "matched_dim", "mqar_rows"]

#: benchmark name -> (registered model, its options besides the shared recipe)
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "gla": ("gla_lm", {"pattern": "g", "short_conv": 0}),
    "gla_conv": ("gla_lm", {"pattern": "g", "short_conv": 4}),
    "attention": ("transformer", {}),
    "hybrid": ("gla_lm", {"pattern": "gs", "short_conv": 0}),
}
#: the model whose width the others match in parameters
REFERENCE = "attention"

#: (seq_len, num_kv) of a full and of a quick run
FULL_GRID: tuple[tuple[int, int], ...] = ((64, 4), (128, 8), (256, 16))
QUICK_GRID: tuple[tuple[int, int], ...] = ((64, 4),)


@dataclass(frozen=True)
class Recipe:
    """Model size, data and training of every run in the benchmark.

    Attributes:
        dim: width of the reference model (the others are matched to its parameter count).
        depth: blocks per model.
        num_heads: heads of every mixer (one head gives GLA its largest state, ``D x Dv``).
        mlp_ratio: MLP hidden width per model width.
        vocab_size: MQAR token ids (keys from the lower half, values from the upper).
        train_tokens: tokens of training data; ``train_tokens // seq_len`` sequences (val and
            test hold 500 each).
        batch_tokens: tokens per step; ``batch_tokens // seq_len`` sequences. With the grid's
            ``num_kv / seq_len`` fixed, every setting gets the same steps, tokens and queried
            keys per step, and about the same compute per step.
        epochs: passes over the training sequences.
        lr, weight_decay, warmup_fraction: of :class:`TrainConfig`.
        seed: seeds the data, the initial weights and the batch order.
        models: which of :data:`MODELS` to run.
    """

    dim: int = 64
    depth: int = 2
    num_heads: int = 1
    mlp_ratio: float = 1.0
    vocab_size: int = 128
    train_tokens: int = 384_000
    batch_tokens: int = 2048
    epochs: int = 10
    lr: float = 3e-3
    weight_decay: float = 0.1
    warmup_fraction: float = 0.1
    seed: int = 0
    models: tuple[str, ...] = field(default=tuple(MODELS))

    def num_examples(self, seq_len: int) -> int:
        """Training sequences of length ``seq_len``."""
        return max(1, self.train_tokens // seq_len)

    def batch_size(self, seq_len: int) -> int:
        """Sequences of length ``seq_len`` per step."""
        return max(1, self.batch_tokens // seq_len)

    def config(self, seq_len: int) -> TrainConfig:
        """The trainer's settings: a fixed budget (no early stop), best validation weights.

        The same for every model, and on purpose not built on the models' registered recipes
        (:mod:`archsmith.recipe`): the comparison holds training fixed so that its rows differ
        by architecture alone.
        """
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size(seq_len),
            lr=self.lr,
            weight_decay=self.weight_decay,
            warmup_fraction=self.warmup_fraction,
            patience=None,
            seed=self.seed,
        )


FULL_RECIPE = Recipe()
QUICK_RECIPE = replace(FULL_RECIPE, train_tokens=256_000)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _build(name: str, task: Task, recipe: Recipe, dim: int) -> nn.Module:
    arch, options = MODELS[name]
    return create_model(
        arch,
        task=task,
        dim=dim,
        depth=recipe.depth,
        num_heads=recipe.num_heads,
        mlp_ratio=recipe.mlp_ratio,
        **options,
    )


def matched_dim(name: str, task: Task, recipe: Recipe, target: int) -> int:
    """The width of model ``name`` (a multiple of ``recipe.num_heads`` within ``recipe.dim +-
    16``) whose parameter count on ``task`` is closest to ``target``."""
    h = recipe.num_heads
    low = max(h, (recipe.dim - 16) // h * h)
    widths = range(low, recipe.dim + 17, h)
    return min(widths, key=lambda d: (abs(_params(_build(name, task, recipe, d)) - target), d))


def _run(name: str, task: Task, recipe: Recipe, dim: int) -> dict[str, Any]:
    seed_everything(recipe.seed)
    model = _build(name, task, recipe, dim)
    start = time.perf_counter()
    config = recipe.config(task.train.x.shape[1])
    result = fit(model, task, config, progress=False)
    train_s = time.perf_counter() - start
    arch, options = MODELS[name]
    return {
        "model": name,
        "arch": " ".join([arch, *(f"{k}={v}" for k, v in options.items())]),
        "dim": dim,
        "params": _params(model),
        "accuracy": result.test["accuracy"],
        "val_accuracy": result.val["accuracy"],
        "epochs": result.epochs_run,
        "batch_size": config.batch_size,
        "steps": result.epochs_run
        * math.ceil(len(task.train) / config.steps_batch(len(task.train))),
        "train_s": train_s,
    }


def mqar_rows(
    grid: Sequence[tuple[int, int]], recipe: Recipe, *, echo: bool = True
) -> list[dict[str, Any]]:
    """Train every model of ``recipe.models`` on MQAR at each ``(seq_len, num_kv)`` of ``grid``;
    one row per run (keys in the module docstring)."""
    console = Console(stderr=True, highlight=False, quiet=not echo)
    rows: list[dict[str, Any]] = []
    for seq_len, num_kv in grid:
        task = get_task(
            "mqar",
            seq_len=seq_len,
            num_kv_pairs=num_kv,
            vocab_size=recipe.vocab_size,
            num_examples=recipe.num_examples(seq_len),
            seed=recipe.seed,
        )
        target = _params(_build(REFERENCE, task, recipe, recipe.dim))
        for name in recipe.models:
            dim = recipe.dim if name == REFERENCE else matched_dim(name, task, recipe, target)
            row = {"seq_len": seq_len, "num_kv": num_kv, **_run(name, task, recipe, dim)}
            row["params_ratio"] = row["params"] / target
            row["chance"] = 1.0 / (recipe.vocab_size - recipe.vocab_size // 2)
            console.print(
                f"mqar: T={seq_len} kv={num_kv} {name} (dim {dim}, {row['params']:,} params): "
                f"accuracy {row['accuracy']:.3f} in {row['train_s']:.0f} s"
            )
            rows.append(row)
    return rows


@register_bench("mqar", "MQAR recall: GLA vs softmax attention vs hybrid at equal parameters")
def mqar(ctx: BenchContext) -> list[dict[str, Any]]:
    if ctx.quick:
        return mqar_rows(QUICK_GRID, QUICK_RECIPE)
    return mqar_rows(FULL_GRID, FULL_RECIPE)
