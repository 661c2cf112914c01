"""GLA rows of ``archsmith bench gating``: the GLA forms side by side with causal softmax
attention and flash-linear-attention's own reference.

Inputs: ``B = 1``, ``H = 2`` heads, ``D = Dv = 64``, float32, log gates
``logsigmoid(x) / 16`` (the paper's normaliser), ``T`` = 512, 2048, 8192, 16384 (``--quick``:
512 and 4096). Implementations (``impl``):

- ``chunk`` — :func:`~archsmith.gating.gla.chunk_gla` (chunk 64), the training path;
- ``recurrent`` — :func:`~archsmith.gating.gla.naive_recurrent_gla`, the token loop;
- ``parallel`` — :func:`~archsmith.gating.gla.parallel_gla`, ``O(T^2 D)`` memory;
- ``sdpa`` — ``torch.nn.functional.scaled_dot_product_attention(is_causal=True)`` on the same
  ``q, k, v`` (softmax attention: the FlashAttention-style baseline);
- ``fla_naive`` — ``naive_recurrent_gla`` from the installed ``fla`` package, loaded from
  ``fla/ops/gla/naive.py`` by file path (``import fla.ops`` needs Triton).

Columns: ``fwd_ms`` (forward under ``torch.no_grad``) and ``fwd_bwd_ms`` (forward, ``sum(o)``,
backward to ``q, k, v, g``), medians of interleaved rounds per ``T``; ``saved_bytes``: the
distinct storages autograd keeps for backward (through ``saved_tensors_hooks``, inputs
included); ``flops``: the analytic forward+backward count below; ``gflops`` = ``flops /
fwd_bwd_ms``, next to ``peak_gflops`` (this run's float32 matmul rate); ``speedup_chunk`` =
``fwd_bwd_ms / chunk's fwd_bwd_ms`` at the same ``T``; at ``T = 8192`` the ``sdpa`` and
``recurrent`` rows also carry ``target_speedup`` (4 and 50, the issue's targets) and
``target_met``.

The reference loop, like fla's ``naive_recurrent_gla``, indexes one token per step
(``q[:, t]``); autograd turns each index into a full-size gradient, so its backward pass costs
``O(T^2)`` memory traffic. That is the naive form as written (and as fla writes it); a loop over
``unbind``-ed tokens has a linear backward and is faster at large ``T``.

FLOP counts (2 per multiply-add, per head, forward; forward+backward is counted as 3x):

- chunk: ``ceil(T / C) (2 C^2 D + 2 C^2 Dv + 4 C D Dv)`` (:func:`chunk_gla_flops`);
- recurrent, fla_naive: ``4 T D Dv`` (state update and read-out per token);
- parallel: ``2 T^2 D + 2 T^2 Dv`` (all pairs, the masked half included);
- sdpa: ``T^2 D + T^2 Dv`` (the causal half of ``Q K^T`` and ``P V``).

A combination that would take too long is skipped, with a ``note`` and no numbers (nothing is
extrapolated): the token loops (``recurrent``, ``fla_naive``) beyond ``T = 8192`` (quick:
``512``), the parallel form when its ``[T, T, D]`` decays would exceed 256 MiB. Where a token
loop is timed, every form at that ``T`` gets 3 timed rounds after 1 warm-up.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F

from archsmith.bench.registry import BenchContext
from archsmith.gating.gla import chunk_gla, chunk_gla_flops, naive_recurrent_gla, parallel_gla
from archsmith.measure.timing import time_interleaved

__all__ = ["gla_rows", "load_fla_naive"]

BATCH, HEADS, DIM = 1, 2, 64
CHUNK = 64
FULL_LENGTHS = (512, 2048, 8192, 16384)
QUICK_LENGTHS = (512, 4096)
#: longest T at which the token loops are timed (quick, full): beyond, a run takes minutes
SLOW_MAX_T = {True: 512, False: 8192}
SLOW_ROUNDS = (3, 1)  # (repeats, warmup) at a T where a recurrent form is timed
PARALLEL_MAX_BYTES = 256 * 2**20
SLOW = ("recurrent", "fla_naive")
#: the issue's targets: chunk's forward+backward at least this many times faster, at TARGET_T
TARGETS = {"sdpa": 4.0, "recurrent": 50.0}
TARGET_T = 8192

Op = Callable[..., tuple[torch.Tensor, torch.Tensor | None]]


def load_fla_naive() -> ModuleType:
    """flash-linear-attention's ``fla/ops/gla/naive.py``, loaded by path (no Triton needed).

    Raises:
        ImportError: fla is not installed, or the file is missing or fails to load.
    """
    spec = importlib.util.find_spec("fla")
    if spec is None or spec.origin is None:
        raise ImportError("not installed (pip install 'archsmith[bench]')")
    path = Path(spec.origin).parent / "ops" / "gla" / "naive.py"
    module_spec = importlib.util.spec_from_file_location("_archsmith_fla_gla_naive", path)
    if module_spec is None or module_spec.loader is None or not path.exists():
        raise ImportError(f"fla is installed but has no {path}")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as err:  # any failure to load the anchor is reported, not raised
        raise ImportError(f"loading {path} failed: {err}") from None
    return module


def _flops(impl: str, t: int) -> int:
    """Forward+backward FLOPs of ``impl`` at length ``t`` (see the module docstring)."""
    per_head = {
        "recurrent": 4 * t * DIM * DIM,
        "fla_naive": 4 * t * DIM * DIM,
        "parallel": 2 * t * t * DIM * 2,
        "sdpa": t * t * DIM * 2,
    }
    if impl == "chunk":
        return chunk_gla_flops(BATCH, t, HEADS, DIM, chunk_size=CHUNK, backward=True)
    return 3 * BATCH * HEADS * per_head[impl]


def _inputs(t: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(t)
    q, k, v = (torch.randn(BATCH, t, HEADS, DIM, generator=gen) for _ in range(3))
    g = F.logsigmoid(torch.randn(BATCH, t, HEADS, DIM, generator=gen)) / 16
    return {"q": q, "k": k, "v": v, "g": g}


def _ops(fla: ModuleType | None) -> dict[str, Callable[[dict[str, torch.Tensor]], torch.Tensor]]:
    """``impl -> fn(inputs) -> o`` on the ``[B, T, H, D]`` inputs (sdpa on ``[B, H, T, D]``)."""

    def gla(op: Op, **kw: Any) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
        return lambda x: op(x["q"], x["k"], x["v"], x["g"], **kw)[0]

    ops = {
        "chunk": gla(chunk_gla, chunk_size=CHUNK),
        "recurrent": gla(naive_recurrent_gla),
        "parallel": gla(parallel_gla),
        "sdpa": lambda x: F.scaled_dot_product_attention(x["qt"], x["kt"], x["vt"], is_causal=True),
    }
    if fla is not None:
        ops["fla_naive"] = gla(fla.naive_recurrent_gla)
    return ops


def _leaves(x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fresh leaves requiring grad, plus the head-major copies sdpa takes."""
    out = {k: v.detach().clone().requires_grad_() for k, v in x.items()}
    for name in ("q", "k", "v"):
        out[name + "t"] = x[name].transpose(1, 2).contiguous().requires_grad_()
    return out


def _forward(
    fn: Callable[[dict[str, torch.Tensor]], torch.Tensor], x: dict[str, torch.Tensor]
) -> Callable[[], None]:
    def run() -> None:
        with torch.no_grad():
            fn(x)

    return run


def _fwd_bwd(
    fn: Callable[[dict[str, torch.Tensor]], torch.Tensor], x: dict[str, torch.Tensor]
) -> Callable[[], None]:
    def run() -> None:
        for leaf in x.values():
            leaf.grad = None
        fn(x).sum().backward()

    return run


def _saved_bytes(
    fn: Callable[[dict[str, torch.Tensor]], torch.Tensor], x: dict[str, torch.Tensor]
) -> int:
    """Bytes of the distinct storages autograd saves during one forward of ``fn``."""
    seen: dict[tuple[int, int], int] = {}
    held: list[torch.UntypedStorage] = []  # keep storages alive so no address is reused

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key not in seen:
            seen[key] = storage.nbytes()
            held.append(storage)
        return t.detach()

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(x)
    del out
    return sum(seen.values())


def _skip_note(
    impl: str, t: int, last: dict[str, tuple[int, float]], max_slow_t: int
) -> str | None:
    """Why ``impl`` is not timed at ``t``, or None to time it."""
    if impl == "parallel":
        need = BATCH * HEADS * t * t * DIM * 4
        if need > PARALLEL_MAX_BYTES:
            return f"skipped: its [T, T, D] decays alone need {need / 2**30:.1f} GiB"
    if impl in SLOW and t > max_slow_t:
        seen = ""
        if impl in last:
            t0, ms0 = last[impl]
            seen = f" (one fwd + fwd_bwd took {ms0 / 1e3:.1f} s at T={t0})"
        return f"skipped: the token loop is timed up to T={max_slow_t} in this run{seen}"
    return None


def gla_rows(ctx: BenchContext) -> list[dict[str, Any]]:
    """Rows for every ``(T, impl)``; see the module docstring."""
    lengths = QUICK_LENGTHS if ctx.quick else FULL_LENGTHS
    max_slow_t = SLOW_MAX_T[ctx.quick]
    peak = ctx.machine.get("matmul_gflops")
    try:
        fla: ModuleType | None = load_fla_naive()
        fla_note = None
    except ImportError as err:
        fla, fla_note = None, str(err)
    ops = _ops(fla)
    last: dict[str, tuple[int, float]] = {}  # impl -> (T, fwd + fwd_bwd ms) of its last timing
    rows: list[dict[str, Any]] = []
    for t in lengths:
        x = _leaves(_inputs(t))
        notes = {impl: _skip_note(impl, t, last, max_slow_t) for impl in ops}
        timed = [impl for impl in ops if notes[impl] is None]
        slow = any(impl in SLOW for impl in timed)
        repeats, warmup = (
            (min(ctx.repeats, SLOW_ROUNDS[0]), min(ctx.warmup, SLOW_ROUNDS[1]))
            if slow
            else (ctx.repeats, ctx.warmup)
        )
        fwd = time_interleaved(
            {i: _forward(ops[i], x) for i in timed}, repeats=repeats, warmup=warmup
        )
        fb = time_interleaved(
            {i: _fwd_bwd(ops[i], x) for i in timed}, repeats=repeats, warmup=warmup
        )
        chunk_ms = fb["chunk"].median_ms
        for impl in ("chunk", "recurrent", "parallel", "sdpa", "fla_naive"):
            row: dict[str, Any] = {"table": "gla", "op": "gla", "impl": impl, "T": t}
            if impl == "fla_naive" and fla is None:
                rows.append({**row, "missing": "fla", "note": fla_note})
                continue
            if impl not in timed:
                rows.append({**row, "note": notes[impl]})
                continue
            fb_ms = fb[impl].median_ms
            last[impl] = (t, fwd[impl].median_ms + fb_ms)
            flops = _flops(impl, t)
            rows.append(
                {
                    **row,
                    "fwd_ms": fwd[impl].median_ms,
                    "fwd_bwd_ms": fb_ms,
                    "speedup_chunk": fb_ms / chunk_ms,
                    "saved_bytes": _saved_bytes(ops[impl], x),
                    "flops": flops,
                    "gflops": flops / (fb_ms * 1e6),
                    "peak_gflops": peak,
                    "rounds": repeats,
                }
            )
            if t == TARGET_T and impl in TARGETS:
                rows[-1]["target_speedup"] = TARGETS[impl]
                rows[-1]["target_met"] = fb_ms / chunk_ms >= TARGETS[impl]
    return rows
