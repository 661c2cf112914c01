"""The one place where families register benchmark cases.

A case is a function ``fn(ctx: BenchContext) -> list[dict]`` that returns table rows; it is
registered by name with :func:`register_bench` in a module listed in :data:`CASE_MODULES`, which
:func:`list_benches` / :func:`get_bench` import on first use (so importing ``archsmith.bench``
stays cheap and a case module may import anything it needs).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from archsmith.errors import ArchsmithError, did_you_mean

__all__ = [
    "CASE_MODULES",
    "BenchContext",
    "BenchEntry",
    "BenchFn",
    "get_bench",
    "list_benches",
    "register_bench",
    "unregister_bench",
]

#: modules whose import registers the benchmark cases
CASE_MODULES: tuple[str, ...] = (
    "archsmith.bench.baseline",
    "archsmith.bench.selfnorm",
    "archsmith.bench.survival",
    "archsmith.bench.reversible",
    "archsmith.bench.tensornet",
    "archsmith.bench.gating",
    "archsmith.bench.early_exit",
    "archsmith.bench.mqar",
    "archsmith.bench.compress",
    "archsmith.bench.channel_masks",
    "archsmith.bench.search",
)


@dataclass(frozen=True)
class BenchContext:
    """What a case gets to run with.

    Attributes:
        quick: run a reduced grid (smoke runs, CI).
        machine: :func:`archsmith.measure.machine.machine_info` of this run, measured first
            (``machine["matmul_gflops"]`` is this machine's float32 matmul rate).
        repeats: timed rounds for :func:`archsmith.measure.timing.time_interleaved`.
        warmup: untimed rounds before them.
        json_path: where the run's JSON goes (``--json``), or None; a case may write companion
            files beside it (a plot ``NAME.png`` next to ``NAME.json``).
    """

    quick: bool
    machine: dict[str, Any] = field(default_factory=dict)
    repeats: int = 15
    warmup: int = 3
    json_path: str | None = None


BenchFn = Callable[[BenchContext], list[dict[str, Any]]]


@dataclass(frozen=True)
class BenchEntry:
    """A registered case: its name, a one-line description and the function that runs it."""

    name: str
    description: str
    fn: BenchFn


_BENCHES: dict[str, BenchEntry] = {}


def register_bench(name: str, description: str) -> Callable[[BenchFn], BenchFn]:
    """Decorator: register ``fn(ctx) -> rows`` as the benchmark ``name``.

    Registering a second, different function under a taken name is a programming error
    (``ValueError``); re-running the same definition (a module reload) replaces the entry.
    """

    def decorator(fn: BenchFn) -> BenchFn:
        old = _BENCHES.get(name)
        if old is not None and _qualname(old.fn) != _qualname(fn):
            raise ValueError(f"benchmark {name!r} is already registered by {_qualname(old.fn)}")
        _BENCHES[name] = BenchEntry(name, description, fn)
        return fn

    return decorator


def unregister_bench(name: str) -> None:
    """Remove the benchmark ``name`` (for tests and temporary cases); unknown names are ignored."""
    _BENCHES.pop(name, None)


def _qualname(fn: Callable[..., object]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _load_cases() -> None:
    # import errors propagate: a broken case module is a bug to see, not a case to hide
    for module in CASE_MODULES:
        importlib.import_module(module)


def list_benches() -> list[str]:
    """Names of all registered benchmarks, sorted (imports :data:`CASE_MODULES` first)."""
    _load_cases()
    return sorted(_BENCHES)


def get_bench(name: str) -> BenchEntry:
    """The registered benchmark ``name``; an unknown name raises :class:`ArchsmithError`."""
    names = list_benches()
    if name not in _BENCHES:
        known = ", ".join(names) or "none"
        raise ArchsmithError(
            f"unknown benchmark {name!r}{did_you_mean(name, names)}; known: {known}"
        )
    return _BENCHES[name]
