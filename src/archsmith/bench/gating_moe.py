"""MoE rows of ``archsmith bench gating``: top-2-of-8 mixture of experts vs a dense MLP with the
same active parameters.

The MoE layer (:class:`~archsmith.gating.moe.MoE`, 8 experts of hidden width ``H``, top-2
softmax router, capacity factor 1.25) and the dense MLP of hidden width ``2 H`` (two experts'
worth: the parameters one token actually uses) run on the same ``T`` tokens of width
``D = 256`` (``H = 512``), timed interleaved:

- ``fwd_ms``: eval-mode forward under ``torch.no_grad``;
- ``fwd_bwd_ms``: training-mode forward, ``sum(y)`` (+ the MoE's auxiliary loss) and backward
  to the input and every parameter;
- ``saved_bytes``: saved-activation bytes of one training step (:func:`archsmith.cost.measure`);
- ``gflops``: training-step FLOPs (FLOP counter) / ``fwd_bwd_ms``; ``peak_gflops`` is this
  run's measured float32 matmul rate;
- ``tokens_per_s`` (training steps) and ``vs_dense`` = MoE ``fwd_bwd_ms`` / dense
  ``fwd_bwd_ms`` (target: <= 1.3);
- ``dropped_tokens`` / ``dropped_assignments`` (MoE row): what the capacity limit dropped in
  the last step (0 on these random inputs: the near-uniform router at initialization keeps
  every expert under ``1.25 * N k / E``, so the MoE does the dense layer's arithmetic).

Rows carry ``"table": "moe"`` so they print as their own table next to the GLA rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from archsmith.bench.registry import BenchContext
from archsmith.cost import measure
from archsmith.gating.moe import MoE
from archsmith.layers.mlp import FeedForward
from archsmith.measure.timing import time_interleaved

__all__ = ["moe_rows"]

DIM, HIDDEN, EXPERTS, TOP_K, CAPACITY = 256, 512, 8, 2, 1.25


def _forward(model: nn.Module, x: Tensor) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            model(x)

    return run


def _train_step(model: nn.Module, x: Tensor) -> Callable[[], None]:
    def run() -> None:
        model.zero_grad(set_to_none=True)
        x.grad = None
        loss = model(x).sum()
        aux = getattr(model, "aux_loss", None)
        (loss if aux is None else loss + aux).backward()

    return run


def moe_rows(ctx: BenchContext) -> list[dict[str, Any]]:
    """Rows for T = 4096 (quick) or T = 4096 and 8192 tokens."""
    sizes = (4096,) if ctx.quick else (4096, 8192)
    peak = ctx.machine.get("matmul_gflops")
    rows: list[dict[str, Any]] = []
    for t in sizes:
        gen = torch.Generator().manual_seed(t)
        x = torch.randn(t, DIM, generator=gen).requires_grad_(True)
        torch.manual_seed(0)
        models: dict[str, nn.Module] = {
            "moe_top2": MoE(
                DIM, HIDDEN, num_experts=EXPERTS, top_k=TOP_K, capacity_factor=CAPACITY
            ),
            "dense": FeedForward(DIM, TOP_K * HIDDEN),
        }
        fns: dict[str, Callable[[], object]] = {}
        for name, model in models.items():
            model.eval()
            fns[f"{name}:fwd"] = _forward(model, x)
        timings_fwd = time_interleaved(fns, repeats=ctx.repeats, warmup=ctx.warmup)
        for model in models.values():
            model.train()
        fns = {f"{name}:fwd_bwd": _train_step(model, x) for name, model in models.items()}
        timings_fb = time_interleaved(fns, repeats=ctx.repeats, warmup=ctx.warmup)
        dense_fb = timings_fb["dense:fwd_bwd"].median_ms
        for name, model in models.items():
            cost = measure(model, x, timing=False)
            fb = timings_fb[f"{name}:fwd_bwd"].median_ms
            row: dict[str, Any] = {
                "table": "moe",
                "op": "moe",
                "impl": name,
                "T": t,
                "fwd_ms": timings_fwd[f"{name}:fwd"].median_ms,
                "fwd_bwd_ms": fb,
                "saved_bytes": cost.saved_activation_bytes,
                "gflops": cost.train_step_flops / (fb * 1e6),
                "peak_gflops": peak,
                "tokens_per_s": t / (fb / 1e3),
                "vs_dense": fb / dense_fb,
                "active_params": _active_params(model),
            }
            if isinstance(model, MoE) and model.last_stats is not None:
                # what the timed steps computed: with drops the MoE would do less arithmetic
                # than the dense layer, so they are reported beside the ratio
                row["dropped_tokens"] = model.last_stats.dropped_tokens
                row["dropped_assignments"] = model.last_stats.dropped_assignments
            rows.append(row)
    return rows


def _active_params(model: nn.Module) -> int:
    """Parameters one token uses: top-k experts plus the router for the MoE; all for dense."""
    if isinstance(model, MoE):
        expert = sum(p.numel() for p in model.experts[0].parameters())
        return TOP_K * expert + sum(p.numel() for p in model.router.parameters())
    return sum(p.numel() for p in model.parameters())
