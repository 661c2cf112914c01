"""Interleaved timing: every candidate runs once per round, in a rotating order.

On a shared machine the speed drifts (other jobs, turbo, thermal limits). Timing candidate A
for a while and then candidate B would let that drift masquerade as a difference between them;
running them in turn, and rotating who goes first, spreads the drift over all of them, so the
ratios of their medians are what a run can be trusted for.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from archsmith.errors import ArchsmithError

__all__ = ["TimingResult", "rotated", "time_interleaved", "time_interleaved_clocks"]


@dataclass(frozen=True)
class TimingResult:
    """Wall-clock times of one candidate, in milliseconds.

    Attributes:
        median_ms: median over the timed rounds (the number to report).
        min_ms: fastest round.
        iqr_ms: interquartile range (spread; 0 with fewer than two samples).
        samples: every timed round, in the order they ran.
    """

    median_ms: float
    min_ms: float
    iqr_ms: float
    samples: tuple[float, ...]

    @classmethod
    def from_samples(cls, samples_ms: list[float]) -> TimingResult:
        if not samples_ms:
            raise ValueError("TimingResult needs at least one sample")
        if len(samples_ms) >= 2:
            q1, _, q3 = statistics.quantiles(samples_ms, n=4, method="inclusive")
            iqr = q3 - q1
        else:
            iqr = 0.0
        return cls(
            median_ms=float(statistics.median(samples_ms)),
            min_ms=float(min(samples_ms)),
            iqr_ms=float(iqr),
            samples=tuple(samples_ms),
        )


def rotated(names: list[str], round_index: int) -> list[str]:
    """``names`` rotated left by ``round_index``: round r starts with candidate r mod n."""
    if not names:
        return []
    k = round_index % len(names)
    return names[k:] + names[:k]


def time_interleaved(
    fns: Mapping[str, Callable[[], object]],
    *,
    repeats: int,
    warmup: int,
    clock: Callable[[], float] = time.perf_counter,
    sync: Callable[[], None] | None = None,
) -> dict[str, TimingResult]:
    """Time every function in ``fns`` over ``repeats`` interleaved rounds.

    Args:
        fns: ``{name: fn}``; each ``fn()`` is one call to time (its result is ignored).
        repeats: timed rounds; in each, every fn runs once, the order rotated by one per round.
        warmup: untimed rounds run first (same rotation), for caches, lazy set-up and JIT.
        clock: seconds as a float; tests inject a fake one.
        sync: called after each call before the clock is read (e.g.
            ``torch.cuda.synchronize``: GPU work runs asynchronously).

    Returns:
        ``{name: TimingResult}`` in the order of ``fns``.
    """
    timed = time_interleaved_clocks(fns, {"time": clock}, repeats=repeats, warmup=warmup, sync=sync)
    return timed["time"]


def time_interleaved_clocks(
    fns: Mapping[str, Callable[[], object]],
    clocks: Mapping[str, Callable[[], float]],
    *,
    repeats: int,
    warmup: int,
    sync: Callable[[], None] | None = None,
) -> dict[str, dict[str, TimingResult]]:
    """:func:`time_interleaved` reading several clocks around the same calls (say wall time and
    the process's CPU time, which counts every thread and not the time other jobs hold the
    core): one set of rounds instead of one per clock.

    Returns:
        ``{clock_name: {name: TimingResult}}``.
    """
    if repeats < 1:
        raise ArchsmithError(f"timing: repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ArchsmithError(f"timing: warmup must be >= 0, got {warmup}")
    if not clocks:
        raise ArchsmithError("timing: give at least one clock")
    names = list(fns)
    for r in range(warmup):
        for name in rotated(names, r):
            fns[name]()
            if sync is not None:
                sync()
    readers = list(clocks.items())
    samples: dict[str, dict[str, list[float]]] = {c: {n: [] for n in names} for c in clocks}
    for r in range(repeats):
        for name in rotated(names, r):
            starts = [read() for _, read in readers]
            fns[name]()
            if sync is not None:
                sync()
            # read back in reverse so the intervals nest: the last clock's holds no other reads
            for (clock_name, read), start in reversed(list(zip(readers, starts, strict=True))):
                samples[clock_name][name].append((read() - start) * 1e3)
    return {
        c: {name: TimingResult.from_samples(samples[c][name]) for name in names} for c in clocks
    }
