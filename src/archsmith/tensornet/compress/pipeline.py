"""``archsmith compress``: factor a model's dense layers under a parameter budget, heal, save.

Steps (CompactifAI's recipe — "layers replaced by MPOs with truncated bond dimension, then
healed by brief retraining" — with per-layer ranks chosen by sensitivity):

1. pick the layers (:meth:`Subject.eligible`) and the budget: the factored layers may store at
   most ``(1 - target) x`` the parameters (weights + biases) of the dense layers they replace;
2. measure each layer's error curve over its candidate ranks on calibration batches and spend
   the budget greedily where it removes the most error (:mod:`.sensitivity`, :mod:`.allocate`);
3. replace each layer by ``Format.from_linear(layer, rank)`` (truncated decomposition);
4. optionally heal by distillation on the original's outputs (:mod:`.heal`);
5. report parameters, file size, latency (interleaved with the original) and the subject's
   agreement metrics before and after healing, and save everything atomically.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archsmith.checkpoint import save_model
from archsmith.errors import ArchsmithError
from archsmith.io import atomic_write_json
from archsmith.measure.tables import jsonable
from archsmith.measure.timing import time_interleaved
from archsmith.tensornet.compress.allocate import allocate_greedy, allocate_uniform, total_params
from archsmith.tensornet.compress.formats import get_format
from archsmith.tensornet.compress.heal import HealConfig, heal
from archsmith.tensornet.compress.saving import WEIGHTS_FILE, save_compressed
from archsmith.tensornet.compress.sensitivity import (
    ALLOCATIONS,
    input_grams,
    probe_function,
    rank_curves,
)
from archsmith.tensornet.compress.subject import Subject
from archsmith.tensornet.compress.surgery import linear_params, module_params, set_submodule

__all__ = [
    "REPORT_FILE",
    "CompressConfig",
    "CompressResult",
    "check_out_dir",
    "compress",
    "output_dir",
]

REPORT_FILE = "report.json"


@dataclass(frozen=True)
class CompressConfig:
    """What :func:`compress` does.

    Attributes:
        method: layer format (``mpo``, ``tt``, ``tucker``; see :data:`.formats.METHODS`).
        target: fraction of the compressed layers' parameters removed, in (0, 1): the factored
            layers store at most ``(1 - target)`` times the dense layers' weights and biases.
        allocation: how ranks are chosen (see :mod:`.sensitivity`).
        heal: healing hyper-parameters (``steps=0``: no healing).
        latency_repeats: interleaved timing rounds of the original and the compressed model.
    """

    method: str
    target: float
    allocation: str = "sensitivity"
    heal: HealConfig = field(default_factory=lambda: HealConfig(steps=0))
    latency_repeats: int = 5

    def __post_init__(self) -> None:
        get_format(self.method)
        if not 0 < self.target < 1:
            raise ArchsmithError(
                f"--target-params must be a fraction in (0, 1) (0.5 = half the parameters of the "
                f"compressed layers removed), got {self.target}"
            )
        if self.allocation not in ALLOCATIONS:
            raise ArchsmithError(
                f"unknown allocation {self.allocation!r}; choose one of {', '.join(ALLOCATIONS)}"
            )
        if self.latency_repeats < 1:
            raise ArchsmithError(f"latency repeats must be >= 1, got {self.latency_repeats}")


@dataclass
class CompressResult:
    """What :func:`compress` returns (and writes to ``report.json``).

    Attributes:
        ranks: ``{layer name: rank}``.
        rows: the report table: the original, the compressed model, the healed model.
        layers: per-layer details (dense and factored parameters, rank, estimated error).
        heal_losses: the distillation loss of every healing step.
    """

    ranks: dict[str, int]
    rows: list[dict[str, Any]]
    layers: list[dict[str, Any]]
    heal_losses: list[float]
    config: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_out_dir(out: Path, force: bool) -> None:
    """Fail early (before any work) if ``out`` cannot receive the result."""
    if out.exists() and not out.is_dir():
        raise ArchsmithError(f"--out: {str(out)!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ArchsmithError(
            f"--out: {str(out)!r} exists and is not empty (use --force to replace it)"
        )
    parent = out.parent if out.parent != Path("") else Path(".")
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir() or not os.access(p, os.W_OK | os.X_OK):
                raise ArchsmithError(
                    f"--out: cannot create {str(out)!r} ({str(p)!r} is not a writable directory)"
                )
            break


@contextmanager
def output_dir(out: Path, force: bool) -> Iterator[Path]:
    """A temporary directory beside ``out`` that becomes ``out`` when the block succeeds.

    On failure it is removed and ``out`` is untouched; with ``force`` an existing ``out`` is
    replaced only once the new one is complete.
    """
    check_out_dir(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary directory
    try:
        yield tmp
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _state_bytes(model: nn.Module, where: Path) -> int:
    path = where / ".size-probe.safetensors"
    save_model(path, model)
    size = path.stat().st_size
    path.unlink()
    return size


def _latency(subject: Subject, model: nn.Module, repeats: int) -> tuple[float, float]:
    batch = subject.latency_batch()
    with torch.no_grad():
        times = time_interleaved(
            {
                "original": lambda: subject.outputs(subject.teacher, batch),
                "compressed": lambda: subject.outputs(model, batch),
            },
            repeats=repeats,
            warmup=2,
        )
    return times["original"].median_ms, times["compressed"].median_ms


def compress(
    subject: Subject,
    config: CompressConfig,
    *,
    out_dir: Path | None = None,
    log: Callable[[str], None] = lambda _: None,
    progress: bool = False,
) -> CompressResult:
    """Compress ``subject.model`` in place (see the module docstring); save into ``out_dir``.

    ``out_dir`` must exist (use :func:`output_dir` for the atomic, all-or-nothing version).
    """
    fmt = get_format(config.method)
    model = subject.model.eval()
    layers = subject.eligible(model)
    if not layers:
        raise ArchsmithError(f"compress: {subject.label} has no layers to compress")
    dense = sum(linear_params(layer) for layer in layers.values())
    budget = int((1 - config.target) * dense)
    keep = 1 - config.target
    calibration, probes = subject.calibration_batches(), subject.probe_batches()

    def probe_outputs(m: nn.Module) -> Iterator[torch.Tensor]:
        return (subject.outputs(m, batch) for batch in probes)

    started = time.perf_counter()
    with torch.no_grad():
        reference = list(probe_outputs(model))
    grams = None
    if config.allocation in ("activation", "sensitivity"):
        grams = input_grams(model, layers, lambda: [subject.outputs(model, b) for b in calibration])
    probe = probe_function(model, layers, probe_outputs, reference)
    log(f"rank selection ({config.allocation}) over {len(layers)} layers ...")
    curves = rank_curves(
        layers, fmt, allocation=config.allocation, keep=keep, grams=grams, probe=probe
    )
    if config.allocation == "uniform":
        ranks = allocate_uniform(curves, keep)
    else:
        ranks = allocate_greedy(curves, budget)
    compressed_linear = total_params(curves, ranks)
    if compressed_linear > budget:  # uniform: a layer whose smallest rank exceeds its share
        raise ArchsmithError(
            f"--target-params {config.target}: the smallest ranks of the {config.method} format "
            f"keep {compressed_linear} of {dense} parameters; ask for less or use "
            "--allocation sensitivity"
        )
    selection_s = time.perf_counter() - started

    original_total = module_params(model)
    original_eval = subject.evaluate(subject.teacher)
    by_name = {c.name: c for c in curves}
    for name, layer in layers.items():
        gram = grams[name] if grams is not None else None
        set_submodule(model, name, fmt.factor(layer, ranks[name], by_name[name].variant, gram))
    model.eval()
    total = module_params(model)
    log("evaluating the compressed model ...")
    before = subject.evaluate(model)
    t_orig, t_comp = _latency(subject, model, config.latency_repeats)

    losses: list[float] = []
    after: dict[str, float] | None = None
    heal_s = 0.0
    if config.heal.steps > 0:
        log(f"healing: {config.heal.steps} steps ...")
        started = time.perf_counter()
        every = max(1, config.heal.steps // 10)

        def on_step(step: int, loss: float) -> None:
            if (step + 1) % every == 0:
                log(f"  heal step {step + 1}/{config.heal.steps}: loss {loss:.4f}")

        losses = heal(model, subject, config.heal, on_step=on_step)
        heal_s = time.perf_counter() - started
        after = subject.evaluate(model)

    base = {"model": subject.label, "method": config.method, "target": config.target}
    common = {
        "linear_params": compressed_linear,
        "linear_reduction": 1 - compressed_linear / dense,
        "total_params": total,
        "latency_ms": t_comp,
        "latency_ratio": t_comp / t_orig,
    }
    rows: list[dict[str, Any]] = [
        {
            **base,
            "stage": "original",
            "linear_params": dense,
            "linear_reduction": 0.0,
            "total_params": original_total,
            "latency_ms": t_orig,
            "latency_ratio": 1.0,
            **original_eval,
        },
        {**base, "stage": "compressed", **common, **before},
    ]
    if after is not None:
        rows.append({**base, "stage": f"healed ({config.heal.steps} steps)", **common, **after})

    layer_rows = []
    for name, layer in layers.items():
        c = by_name[name]
        k = c.ranks.index(ranks[name])
        layer_rows.append(
            {
                "layer": name,
                "shape": [layer.out_features, layer.in_features],
                "rank": ranks[name],
                "options": dict(c.variant),
                "dense_params": c.dense_params,
                "params": c.params[k],
                "estimated_error": c.errors[k],
            }
        )
    result = CompressResult(
        ranks=ranks,
        rows=rows,
        layers=layer_rows,
        heal_losses=losses,
        config={
            **asdict(config),
            "budget": budget,
            "selection_seconds": selection_s,
            "heal_seconds": heal_s,
            "threads": torch.get_num_threads(),
        },
    )
    if out_dir is not None:
        variants = {name: by_name[name].variant for name in layers}
        _save(out_dir, subject, model, fmt, layers, ranks, variants, result)
    return result


def _save(
    out_dir: Path,
    subject: Subject,
    model: nn.Module,
    fmt: Any,
    layers: dict[str, nn.Linear],
    ranks: dict[str, int],
    variants: dict[str, Any],
    result: CompressResult,
) -> None:
    subject.save_skeleton(out_dir)
    save_compressed(
        out_dir,
        model,
        source=subject.source(),
        fmt=fmt,
        layers=layers,
        ranks=ranks,
        variants=variants,
    )
    size = (out_dir / WEIGHTS_FILE).stat().st_size
    original_size = _state_bytes(subject.teacher, out_dir)
    for row in result.rows:
        row["file_MB"] = (original_size if row["stage"] == "original" else size) / 1e6
    atomic_write_json(out_dir / REPORT_FILE, jsonable(result.as_dict()))
