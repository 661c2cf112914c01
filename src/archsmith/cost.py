"""What a model costs: parameters, FLOPs, saved-activation bytes, resident memory, latency.

:func:`measure` is the one yardstick every family is judged by and the search optimizes:

- **parameters** of the module (a shared parameter is counted once) and their bytes;
- **FLOPs** of the forward pass and of one training step (forward + loss + backward), counted
  by :class:`torch.utils.flop_counter.FlopCounterMode` (matmuls, convolutions, attention;
  elementwise ops count zero);
- **saved-activation bytes**: the distinct storages autograd keeps alive for backward during one
  training-step forward, seen through :func:`torch.autograd.graph.saved_tensors_hooks`. The
  model's own parameters and buffers are excluded (they live anyway). The count is exact and
  identical on every machine, which makes it the memory number to compare architectures by
  (a reversible network should keep it flat in depth);
- **peak resident memory** of the process during one training step, and its rise over the
  memory resident just before the step (machine- and allocator-dependent: a sanity check, not
  a score);
- **median latencies** of the forward pass (eval mode, no grad) and of a training step.

``measure`` leaves the model as it found it: train/eval flags, ``.grad`` of every parameter,
buffer values (BatchNorm running statistics) and the global RNG state are restored, and no hook
stays installed.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import gc
import io
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psutil
import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from archsmith.errors import ArchsmithError

__all__ = [
    "Cost",
    "format_cost_table",
    "human_bytes",
    "human_count",
    "measure",
    "peak_rss",
    "saved_activation_bytes",
]

LossFn = Callable[[Tensor, Tensor], Tensor]

_StorageKey = tuple[str, int, int]  # (device, data_ptr, nbytes): one storage


@dataclass(frozen=True)
class Cost:
    """The measured cost of one model on one batch (see :func:`measure`).

    Attributes:
        batch_size: size of the first dimension of the first input tensor.
        params: number of parameters (a parameter shared between modules counts once).
        trainable_params: those of ``params`` with ``requires_grad``.
        param_bytes: bytes held by the parameters.
        buffer_bytes: bytes held by the buffers (e.g. BatchNorm running statistics).
        forward_flops: FLOPs of one forward pass in eval mode (no loss).
        train_step_flops: FLOPs of one training step: forward in train mode, loss, backward.
        saved_activation_bytes: bytes of the distinct storages autograd saves for backward in
            one training step (parameters and buffers excluded).
        saved_tensors: number of those distinct storages.
        saved_tensors_skipped: saved tensors without a plain storage (sparse, storage-less
            wrappers), skipped and not counted in the two fields above.
        peak_rss_bytes: peak resident memory of the process during one training step.
        step_rss_bytes: ``peak_rss_bytes`` minus the resident memory just before the step.
        rss_method: ``"vmhwm"`` (kernel high-water mark, exact) or ``"sampled"`` (psutil RSS
            polled every ~1 ms; can miss short spikes).
        forward_ms: median forward latency in ms (eval mode, no grad); None without timing.
        train_step_ms: median training-step latency in ms; None without timing.
    """

    batch_size: int
    params: int
    trainable_params: int
    param_bytes: int
    buffer_bytes: int
    forward_flops: int
    train_step_flops: int
    saved_activation_bytes: int
    saved_tensors: int
    saved_tensors_skipped: int
    peak_rss_bytes: int
    step_rss_bytes: int
    rss_method: str
    forward_ms: float | None
    train_step_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        """All fields as a JSON-safe dict (ints, floats, strings and None only)."""
        return dataclasses.asdict(self)

    def rows(self) -> list[tuple[str, str]]:
        """``(label, human-readable value)`` pairs, in display order, for a table."""
        saved = f"{human_bytes(self.saved_activation_bytes)} in {self.saved_tensors} storages"
        if self.saved_tensors_skipped:
            saved += f" (+{self.saved_tensors_skipped} skipped: no plain storage)"
        return [
            ("batch size", str(self.batch_size)),
            ("parameters", f"{self.params:,}"),
            ("trainable parameters", f"{self.trainable_params:,}"),
            ("parameter memory", human_bytes(self.param_bytes)),
            ("buffer memory", human_bytes(self.buffer_bytes)),
            ("forward FLOPs", human_count(self.forward_flops)),
            ("train-step FLOPs", human_count(self.train_step_flops)),
            ("saved activations", saved),
            (f"peak RSS ({self.rss_method})", human_bytes(self.peak_rss_bytes)),
            ("train-step RSS rise", human_bytes(self.step_rss_bytes)),
            ("forward latency", _human_ms(self.forward_ms)),
            ("train-step latency", _human_ms(self.train_step_ms)),
        ]


# ----------------------------------------------------------------------------------------------
# formatting


def human_bytes(n: int | float) -> str:
    """``1536 -> '1.50 KiB'``: binary (IEC) units, three significant figures."""
    sign = "-" if n < 0 else ""
    value = float(abs(n))
    if value < 1024:
        return f"{sign}{int(value)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{sign}{value:.3g} {unit}" if value >= 100 else f"{sign}{value:.2f} {unit}"


def human_count(n: int | float) -> str:
    """``1_234_567 -> '1.23 M'``: SI prefixes (k, M, G, T, P) for counts such as FLOPs."""
    sign = "-" if n < 0 else ""
    value = float(abs(n))
    if value < 1000:
        return f"{sign}{value:g}"
    for unit in ("k", "M", "G", "T", "P"):
        value /= 1000
        if value < 1000 or unit == "P":
            break
    return f"{sign}{value:.3g} {unit}" if value >= 100 else f"{sign}{value:.2f} {unit}"


def _human_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.3g} ms" if ms >= 100 else f"{ms:.3f} ms"


def format_cost_table(
    cost_or_costs: Cost | Mapping[str, Cost] | Sequence[tuple[str, Cost]],
    title: str = "cost",
) -> str:
    """Render one :class:`Cost`, or several named ones side by side, as a plain-text table.

    Args:
        cost_or_costs: a Cost, a ``{name: Cost}`` mapping, or ``(name, Cost)`` pairs; each
            named Cost becomes one column.
        title: the table's title.

    Returns:
        The table as a string (no colour codes, no trailing newline).
    """
    if isinstance(cost_or_costs, Cost):
        named: list[tuple[str, Cost]] = [("value", cost_or_costs)]
    elif isinstance(cost_or_costs, Mapping):
        named = list(cost_or_costs.items())
    else:
        named = list(cost_or_costs)
    table = Table(title=title)
    table.add_column("quantity")
    for name, _ in named:
        table.add_column(name, justify="right")
    columns = [c.rows() for _, c in named]
    labels = [label for label, _ in columns[0]] if columns else []
    for i, label in enumerate(labels):
        table.add_row(label, *(col[i][1] for col in columns))
    buf = io.StringIO()
    width = max(80, 32 + 24 * len(named))
    Console(file=buf, width=width, color_system=None, highlight=False).print(table)
    return buf.getvalue().rstrip("\n")


# ----------------------------------------------------------------------------------------------
# FLOPs


def _cpu_sdpa_flops(q: Any, k: Any, v: Any, *args: Any, **kwargs: Any) -> int:
    return int(sdpa_flop_count(q, k, v))


def _cpu_sdpa_backward_flops(grad: Any, q: Any, k: Any, v: Any, *args: Any, **kwargs: Any) -> int:
    return int(sdpa_backward_flop_count(grad, q, k, v))


def _flop_counter() -> FlopCounterMode:
    """A silent FLOP counter that also knows the CPU flash-attention kernels.

    Torch counts the CUDA attention kernels but not the fused CPU ones that
    ``F.scaled_dot_product_attention`` dispatches to, which would make attention free on CPU.
    Other ops without a formula (elementwise, norms, softmax) count zero, as in torch.
    """
    aten = torch.ops.aten
    mapping: dict[Any, Any] = {}
    for name, formula in (
        ("_scaled_dot_product_flash_attention_for_cpu", _cpu_sdpa_flops),
        ("_scaled_dot_product_flash_attention_for_cpu_backward", _cpu_sdpa_backward_flops),
    ):
        if hasattr(aten, name):  # not in every torch build
            mapping[getattr(aten, name)] = formula
    return FlopCounterMode(display=False, custom_mapping=mapping)


# ----------------------------------------------------------------------------------------------
# model state: snapshot and restore, so that measuring changes nothing


class _ModelState:
    """Train/eval flags, parameter grads and buffer values of a module, restorable."""

    def __init__(self, model: nn.Module) -> None:
        self.training = [(m, m.training) for m in model.modules()]
        # keep the grad objects themselves: the passes start from grad=None, so backward
        # allocates fresh tensors and never accumulates into these
        self.grads = [(p, p.grad) for p in model.parameters()]
        self.buffers: list[tuple[nn.Module, str, Tensor, Tensor]] = []
        for module in model.modules():
            for name, buf in module.named_buffers(recurse=False):
                # the object too, in case a module re-assigns a buffer instead of updating it
                self.buffers.append((module, name, buf, buf.detach().clone()))

    def restore(self) -> None:
        for module, flag in self.training:
            # the flag itself, not train(flag), which would recurse into the children
            module.training = flag
        for p, grad in self.grads:
            p.grad = grad
        with torch.no_grad():
            for module, name, buf, value in self.buffers:
                setattr(module, name, buf)
                buf.copy_(value)


def _clear_grads(model: nn.Module) -> None:
    for p in model.parameters():
        p.grad = None


# ----------------------------------------------------------------------------------------------
# one training step


def _tensor_leaves(obj: object) -> Iterator[Tensor]:
    """Every tensor in a (nested) tensor / tuple / list / dict output."""
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, Mapping):
        for value in obj.values():
            yield from _tensor_leaves(value)
    elif isinstance(obj, (tuple, list)):
        for value in obj:
            yield from _tensor_leaves(value)


def _loss(output: object, target: Tensor | None, loss_fn: LossFn | None) -> Tensor:
    """The scalar to call backward on: ``loss_fn(output, target)`` or a surrogate sum."""
    if loss_fn is not None:
        assert target is not None  # checked by measure
        loss = loss_fn(output, target)  # type: ignore[arg-type]
    else:
        # sum of every floating output: its backward sends a gradient of ones through all of
        # them, the cost of a real loss without knowing the task
        leaves = [t for t in _tensor_leaves(output) if t.is_floating_point()]
        if not leaves:
            raise ArchsmithError(
                "measure: the model output has no floating-point tensor for a surrogate loss; "
                "pass loss_fn and target"
            )
        loss = leaves[0].sum()
        for t in leaves[1:]:
            loss = loss + t.sum()
    return loss if loss.dim() == 0 else loss.sum()


def _training_step(
    model: nn.Module, args: tuple[Any, ...], target: Tensor | None, loss_fn: LossFn | None
) -> None:
    """Forward (in whatever mode the model is in), loss and backward; no optimizer step."""
    loss = _loss(model(*args), target, loss_fn)
    # a model with nothing trainable and inputs without grad has nothing to differentiate
    if loss.requires_grad:
        loss.backward()


# ----------------------------------------------------------------------------------------------
# saved activations


def _storage_key(t: Tensor) -> _StorageKey | None:
    """The key of ``t``'s storage, or None when it has no plain storage."""
    if t.layout != torch.strided or t.device.type == "meta":
        return None
    try:
        storage = t.untyped_storage()
        return (str(storage.device), storage.data_ptr(), storage.nbytes())
    except (RuntimeError, NotImplementedError, TypeError, AttributeError):
        return None  # sparse, functional or other wrapper tensors without a real storage


class _SavedCounter:
    """Pack hook that records the distinct storages autograd saves, excluding ``owned`` ones."""

    def __init__(self, owned: set[_StorageKey]) -> None:
        self.owned = owned
        self.nbytes: dict[_StorageKey, int] = {}
        self.skipped = 0
        # hold the storages so no address is freed and reused while we count
        self._held: list[torch.UntypedStorage] = []

    def pack(self, t: Tensor) -> Tensor:
        key = _storage_key(t)
        if key is None:
            self.skipped += 1
        elif key not in self.owned and key not in self.nbytes:
            self.nbytes[key] = key[2]
            self._held.append(t.untyped_storage())
        # detach: returning an output tensor itself would tie it to its own grad_fn through
        # the saved variable, a reference cycle that can keep whole graphs alive
        return t.detach()

    @staticmethod
    def unpack(t: Tensor) -> Tensor:
        return t


def _saved_activations(
    model: nn.Module, args: tuple[Any, ...], target: Tensor | None, loss_fn: LossFn | None
) -> tuple[int, int, int]:
    """``(bytes, storages, skipped)`` saved for backward by one training-step forward + loss."""
    owned = {
        key for t in [*model.parameters(), *model.buffers()] if (key := _storage_key(t)) is not None
    }
    counter = _SavedCounter(owned)
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
        loss = _loss(model(*args), target, loss_fn)
    del loss  # the graph is never run backward: the count is what it would have kept
    return sum(counter.nbytes.values()), len(counter.nbytes), counter.skipped


def saved_activation_bytes(
    model: nn.Module,
    batch: Tensor | tuple[Tensor, ...],
    *,
    target: Tensor | None = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> int:
    """Bytes autograd saves for backward in one training-step forward of ``model`` on ``batch``
    (train mode, loss included, parameters and buffers excluded): the
    ``saved_activation_bytes`` of :func:`measure` alone, without FLOPs, memory or timing, so a
    search can probe many configurations cheaply. The model is left unchanged."""
    args = batch if isinstance(batch, tuple) else (batch,)
    state = _ModelState(model)
    try:
        model.train()
        return _saved_activations(model, args, target, loss_fn)[0]
    finally:
        state.restore()


# ----------------------------------------------------------------------------------------------
# resident memory


def _status_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status (e.g. ``VmHWM``) in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{field} not in /proc/self/status")


def _reset_hwm() -> bool:
    """Reset the kernel's resident high-water mark (Linux >= 4.0); False where impossible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        _status_bytes("VmHWM")
    except OSError:
        return False
    return True


def _release_free_heap() -> None:
    """Hand freed heap back to the OS (glibc ``malloc_trim``) where that is possible.

    glibc keeps freed memory resident, so after a larger step in the same process the next
    step's rise over "before" would read as zero; trimming first makes each step's own peak
    show. A no-op where libc has no ``malloc_trim`` (musl, macOS, Windows).
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def peak_rss(step: Callable[[], None]) -> tuple[int, int, str]:
    """Run ``step`` and return ``(peak_rss, rss_before, method)`` in bytes: the process's
    resident high-water mark during the call (``method`` ``"vmhwm"``: the kernel's, reset just
    before; ``"sampled"``: polled every millisecond where it cannot be reset), after freed heap
    is handed back to the OS so that earlier, larger steps do not hide this one's peak."""
    gc.collect()  # garbage from earlier passes would otherwise count as "before"
    _release_free_heap()
    if _reset_hwm():
        before = _status_bytes("VmRSS")
        step()
        return max(_status_bytes("VmHWM"), before), before, "vmhwm"
    proc = psutil.Process()
    before = proc.memory_info().rss
    peak = before
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, proc.memory_info().rss)
            stop.wait(0.001)

    sampler = threading.Thread(target=sample, name="archsmith-rss", daemon=True)
    sampler.start()
    try:
        step()
    finally:
        stop.set()
        sampler.join()
    return max(peak, proc.memory_info().rss), before, "sampled"


# ----------------------------------------------------------------------------------------------
# timing


def _median_ms(
    fn: Callable[[], None], repeats: int, warmup: int, sync: Callable[[], None]
) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()  # CUDA runs asynchronously: wait for the work before reading the clock
        times.append((time.perf_counter() - start) * 1e3)
    return float(statistics.median(times))


# ----------------------------------------------------------------------------------------------
# measure


def _batch_size(args: tuple[Any, ...]) -> int:
    for a in args:
        if isinstance(a, Tensor):
            return int(a.shape[0]) if a.dim() > 0 else 1
    raise ArchsmithError("measure: batch has no tensor (give a Tensor or a tuple of Tensors)")


def _devices(model: nn.Module, args: tuple[Any, ...]) -> set[torch.device]:
    tensors = [*model.parameters(), *model.buffers(), *(a for a in args if isinstance(a, Tensor))]
    return {t.device for t in tensors}


def measure(
    model: nn.Module,
    batch: Tensor | tuple[Tensor, ...],
    *,
    target: Tensor | None = None,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    repeats: int = 10,
    warmup: int = 2,
    timing: bool = True,
) -> Cost:
    """Measure what ``model`` costs on ``batch``; the model is left unchanged.

    A training step is: forward in train mode, loss, backward (no optimizer step). It runs a few
    times (FLOPs, saved activations, resident memory, then timing), each from ``grad=None``.

    Args:
        model: the module to measure.
        batch: its input, e.g. ``x: [B, ...]``; a tuple is passed as positional arguments.
        target: the target given to ``loss_fn`` (e.g. ``y: [B]``); needs ``loss_fn``.
        loss_fn: ``loss_fn(output, target) -> scalar``. Default: a surrogate, the sum of every
            floating tensor in the output (a tensor, or tuples / lists / dicts of them).
        repeats: timed runs per latency; the median is reported. Default 10.
        warmup: untimed runs before the timed ones. Default 2.
        timing: measure latencies; False leaves ``forward_ms`` / ``train_step_ms`` None.

    Returns:
        The :class:`Cost`. ``forward_flops`` and ``forward_ms`` come from eval-mode forwards
        (the inference cost; ``forward_ms`` under ``torch.no_grad``, ``forward_flops`` with grad
        enabled so fused inference kernels that the FLOP counter cannot see are not taken);
        ``train_step_flops`` from a train-mode step, so for a model whose train and eval
        forwards differ (early exit, say) it is not ``forward_flops`` plus the backward alone.
    """
    if repeats < 1:
        raise ArchsmithError(f"measure: repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ArchsmithError(f"measure: warmup must be >= 0, got {warmup}")
    if (target is None) != (loss_fn is None):
        raise ArchsmithError("measure: give target and loss_fn together, or neither")
    args: tuple[Any, ...] = batch if isinstance(batch, tuple) else (batch,)
    batch_size = _batch_size(args)

    params = list(model.parameters())  # deduplicated: a shared parameter appears once
    buffers = list(model.buffers())
    devices = _devices(model, args)
    cuda = [d for d in devices if d.type == "cuda"]

    def sync() -> None:
        for d in cuda:
            torch.cuda.synchronize(d)

    def step() -> None:
        _training_step(model, args, target, loss_fn)

    def forward() -> None:
        with torch.no_grad():
            model(*args)

    state = _ModelState(model)
    try:
        # dropout and friends draw random numbers: measuring must not shift the caller's stream
        with torch.random.fork_rng(devices=cuda), torch.enable_grad():
            model.eval()
            # with grad enabled: under no_grad, fused inference kernels (the fast path of
            # nn.TransformerEncoderLayer) replace the matmuls and the counter sees 0 FLOPs
            with _flop_counter() as counter:
                model(*args)
            forward_flops = counter.get_total_flops()

            model.train()
            _clear_grads(model)
            with _flop_counter() as counter:
                step()
            train_step_flops = counter.get_total_flops()
            _clear_grads(model)

            saved_bytes, saved_count, skipped = _saved_activations(model, args, target, loss_fn)

            # runs after the passes above, so one-time costs (lazy kernel set-up) are paid
            peak, before, rss_method = peak_rss(step)
            _clear_grads(model)

            forward_ms = train_step_ms = None
            if timing:
                model.eval()
                forward_ms = _median_ms(forward, repeats, warmup, sync)
                model.train()

                def timed_step() -> None:
                    _clear_grads(model)  # as zero_grad(set_to_none=True) in a training loop
                    step()

                train_step_ms = _median_ms(timed_step, repeats, warmup, sync)
                _clear_grads(model)
    finally:
        state.restore()

    return Cost(
        batch_size=batch_size,
        params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        buffer_bytes=sum(b.numel() * b.element_size() for b in buffers),
        forward_flops=int(forward_flops),
        train_step_flops=int(train_step_flops),
        saved_activation_bytes=saved_bytes,
        saved_tensors=saved_count,
        saved_tensors_skipped=skipped,
        peak_rss_bytes=peak,
        step_rss_bytes=max(0, peak - before),
        rss_method=rss_method,
        forward_ms=forward_ms,
        train_step_ms=train_step_ms,
    )
