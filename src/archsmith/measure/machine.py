"""Facts about the machine a benchmark ran on, and its measured matmul rate.

Absolute times mean little across machines; the float32 matmul rate measured in the same run
gives every time a yardstick (a model's achieved GFLOP/s next to what this machine's BLAS does
on a large square matmul).
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import psutil
import torch

__all__ = ["machine_info", "matmul_gflops"]


def matmul_gflops(
    n: int = 1024,
    *,
    repeats: int = 5,
    warmup: int = 2,
    device: str | torch.device = "cpu",
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """This machine's float32 matmul rate in GFLOP/s: ``[n, n] @ [n, n]`` is ``2 n^3`` FLOPs.

    Args:
        n: matrix size. Default 1024 (large enough to reach the BLAS's full rate).
        repeats: timed samples; the median is used. Default 5.
        warmup: untimed matmuls first (thread pools, page faults). Default 2.
        device: where to multiply. Default ``"cpu"``.
        clock: seconds as a float.

    Returns:
        The median rate, in GFLOP/s (> 0).
    """
    device = torch.device(device)
    # a private generator: measuring the machine must not shift the caller's random stream
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(device)
    b = torch.randn(n, n, generator=gen).to(device)
    out = torch.empty(n, n, device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def once() -> None:
        torch.mm(a, b, out=out)

    for _ in range(warmup):
        once()
    sync()
    start = clock()
    once()
    sync()
    single = clock() - start
    # small matrices finish in microseconds: batch calls so a sample lasts ~2 ms and the clock
    # resolves it
    inner = 1 if single >= 2e-3 else min(10_000, math.ceil(2e-3 / max(single, 1e-9)))
    samples = []
    for _ in range(repeats):
        start = clock()
        for _ in range(inner):
            once()
        sync()
        samples.append((clock() - start) / inner)
    seconds = max(statistics.median(samples), 1e-12)
    return 2.0 * n**3 / seconds / 1e9


def machine_info(*, _matmul_n: int = 1024) -> dict[str, Any]:
    """Platform, versions, CPU and memory of this machine, and its measured matmul rate.

    Returns:
        A JSON-safe dict: ``platform``, ``machine``, ``python``, ``torch``,
        ``cpu_count_logical``, ``cpu_count_physical``, ``cpu_affinity`` (CPUs this process may
        use), ``torch_threads``, ``memory_total_bytes``, ``cuda`` (device name or None),
        ``matmul_n`` and ``matmul_gflops`` (float32, CPU; plus ``cuda_matmul_gflops`` with a
        GPU). ``_matmul_n`` shrinks the matmul for tests.
    """
    try:
        affinity: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on every platform
        affinity = None
    cuda = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count_logical": psutil.cpu_count(logical=True),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "cpu_affinity": affinity,
        "torch_threads": torch.get_num_threads(),
        "memory_total_bytes": psutil.virtual_memory().total,
        "cuda": cuda,
        "matmul_n": _matmul_n,
        "matmul_gflops": matmul_gflops(_matmul_n),
    }
    if cuda is not None:
        info["cuda_matmul_gflops"] = matmul_gflops(_matmul_n, device="cuda")
    return info
