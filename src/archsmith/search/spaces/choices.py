"""Candidate sets drawn from the registries at call time, so a family joins by registering.

A default space never lists layer names itself: it asks here for "the registered norm layers
that work on ``[B, F]`` vectors of these widths", "the registered linear layers that map these
sizes", and so on. Each registered layer of the kind is *probed*: built at every size the
space can produce and run forward and backward on a small fixed batch of the block's layout.
A layer that raises, returns another shape, produces non-finite values or gradients, or does
not normalize (a norm whose output is constant over the batch, as group norm with one channel
per group is on vectors, or is blown up by ``1 / sqrt(eps)``) is left out.

Optuna needs a categorical parameter's choices to be identical in every trial, worker and
resumed run, so every set is sorted and depends only on the registry and the sizes asked
about; the probe runs under a forked random state (a layer's initialisation must not shift the
trial's seeded training) on inputs from a fixed generator, and its answer is cached per
registry content.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from archsmith.build import check_compatible
from archsmith.errors import ArchsmithError
from archsmith.registry import get_layer, get_model_entry, list_layers, list_models
from archsmith.tasks import Task

__all__ = [
    "Layout",
    "activations",
    "attentions",
    "compatible_models",
    "linears",
    "literal_choices",
    "mlps",
    "norms",
]

#: where a norm layer meets its features: ``vector`` ``[B, F]``, ``image`` ``[B, C, H, W]``
#: (channels first), ``tokens`` ``[B, T, D]`` (features last)
Layout = Literal["vector", "image", "tokens"]

_BATCH = 16
_TOKENS = 3  # a sequence length unlike any width, so a layer normalizing the wrong axis fails


def _snapshot(kind: str) -> tuple[tuple[str, int], ...]:
    """The registered layers of ``kind`` with their factories' identities: a cache key that
    changes when a layer is registered or removed."""
    return tuple((name, id(get_layer(kind, name))) for name in list_layers(kind))


def _inputs(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    # off-centre, wider than unit variance: a norm must actually rescale to pass
    gen = torch.Generator().manual_seed(seed)
    return (2.0 * torch.randn(shape, generator=gen) + 1.0).requires_grad_()


def _runs(module: nn.Module, x: torch.Tensor, out_shape: tuple[int, ...]) -> torch.Tensor | None:
    """``module(x)`` when it has ``out_shape``, finite values and finite input gradients."""
    y = module(x)
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != out_shape:
        return None
    if not torch.isfinite(y).all():
        return None
    weights = torch.linspace(-1.0, 1.0, y.numel()).reshape(y.shape)
    (grad,) = torch.autograd.grad((y * weights).sum(), [x], allow_unused=True)
    if grad is not None and not torch.isfinite(grad).all():
        return None
    return y


def _probe(check: Callable[[], bool]) -> bool:
    with torch.random.fork_rng(devices=[]):
        try:
            return check()
        except Exception:  # any failure means the layer does not fit this use
            return False


def _norm_shape(layout: Layout, features: int, spatial: int) -> tuple[int, ...]:
    if layout == "vector":
        return (_BATCH, features)
    if layout == "image":
        return (_BATCH, features, spatial, spatial)
    return (_BATCH, _TOKENS, features)


def _normalizes(y: torch.Tensor, layout: Layout) -> bool:
    """Each feature still varies over the batch (not collapsed to a constant) and the scale is
    that of a normalized signal (not ``x / sqrt(eps)``)."""
    feature_dim = 1 if layout == "image" else -1
    flat = y.detach().movedim(feature_dim, -1).reshape(_BATCH, -1, y.shape[feature_dim])
    spread = flat.std(dim=0)  # [positions, features]
    return bool(spread.min() > 1e-3) and 0.05 < float(spread.mean()) < 20.0


def _norm_works(
    name: str, layout: Layout, sizes: tuple[int, ...], spatial: tuple[int, ...]
) -> bool:
    factory = get_layer("norm", name)
    for features in sizes:
        for s in spatial:
            shape = _norm_shape(layout, features, s)

            def check(features: int = features, shape: tuple[int, ...] = shape) -> bool:
                module = factory(features)
                module.train()
                y = _runs(module, _inputs(shape, features), shape)
                if y is None or not _normalizes(y, layout):
                    return False
                module.eval()  # running statistics, where the layer keeps them
                with torch.no_grad():
                    return bool(torch.isfinite(module(_inputs(shape, features + 1))).all())

            if not _probe(check):
                return False
    return True


@functools.lru_cache(maxsize=256)
def _norms(
    snapshot: tuple[tuple[str, int], ...],
    layout: Layout,
    sizes: tuple[int, ...],
    spatial: tuple[int, ...],
) -> tuple[str, ...]:
    return tuple(name for name, _ in snapshot if _norm_works(name, layout, sizes, spatial))


def norms(layout: Layout, sizes: Iterable[int], spatial: Iterable[int] = (1,)) -> list[str]:
    """The registered norm layers (``"none"`` included) that normalize ``layout`` inputs of
    every feature count in ``sizes`` (and, for images, every ``spatial x spatial`` map size)."""
    return list(_norms(_snapshot("norm"), layout, _key(sizes), _key(spatial)))


def activations() -> list[str]:
    """The registered activations but ``"none"`` (an identity makes stacked layers linear).

    Activations are elementwise by contract, so none needs probing."""
    return [name for name in list_layers("act") if name != "none"]


def _linear_works(name: str, pairs: tuple[tuple[int, int], ...]) -> bool:
    factory = get_layer("linear", name)
    for n_in, n_out in pairs:

        def check(n_in: int = n_in, n_out: int = n_out) -> bool:
            return _runs(factory(n_in, n_out), _inputs((4, n_in), n_in), (4, n_out)) is not None

        if not _probe(check):
            return False
    return True


@functools.lru_cache(maxsize=256)
def _linears(
    snapshot: tuple[tuple[str, int], ...], pairs: tuple[tuple[int, int], ...]
) -> tuple[str, ...]:
    return tuple(name for name, _ in snapshot if _linear_works(name, pairs))


def linears(pairs: Iterable[tuple[int, int]]) -> list[str]:
    """The registered linear layers (dense, tensorized, ...) that map every ``(in, out)`` size
    pair in ``pairs`` ``[B, in] -> [B, out]``, at their default rank."""
    return list(_linears(_snapshot("linear"), tuple(sorted(set(pairs)))))


def _attn_works(name: str, shapes: tuple[tuple[int, int], ...]) -> bool:
    factory = get_layer("attn", name)
    for dim, heads in shapes:
        shape = (2, 5, dim)

        def check(dim: int = dim, heads: int = heads, shape: tuple[int, ...] = shape) -> bool:
            module = factory(dim, heads, causal=True, dropout=0.0)
            return _runs(module, _inputs(shape, dim), shape) is not None

        if not _probe(check):
            return False
    return True


@functools.lru_cache(maxsize=256)
def _attentions(
    snapshot: tuple[tuple[str, int], ...], shapes: tuple[tuple[int, int], ...]
) -> tuple[str, ...]:
    return tuple(name for name, _ in snapshot if _attn_works(name, shapes))


def attentions(shapes: Iterable[tuple[int, int]]) -> list[str]:
    """The registered token mixers (``attn`` layers) that run causally on ``[B, T, dim]`` for
    every ``(dim, num_heads)`` in ``shapes``."""
    return list(_attentions(_snapshot("attn"), tuple(sorted(set(shapes)))))


def _mlp_works(name: str, shapes: tuple[tuple[int, int], ...]) -> bool:
    factory = get_layer("mlp", name)
    for dim, hidden in shapes:
        shape = (2, 5, dim)

        def check(dim: int = dim, hidden: int = hidden, shape: tuple[int, ...] = shape) -> bool:
            module = factory(dim, hidden, act_layer="gelu", linear_layer="dense")
            return _runs(module, _inputs(shape, dim), shape) is not None

        if not _probe(check):
            return False
    return True


@functools.lru_cache(maxsize=256)
def _mlps(
    snapshot: tuple[tuple[str, int], ...], shapes: tuple[tuple[int, int], ...]
) -> tuple[str, ...]:
    return tuple(name for name, _ in snapshot if _mlp_works(name, shapes))


def mlps(shapes: Iterable[tuple[int, int]]) -> list[str]:
    """The registered Transformer MLP layers (dense, mixture of experts, ...) that map
    ``[B, T, dim]`` through ``hidden`` for every ``(dim, hidden)`` in ``shapes``."""
    return list(_mlps(_snapshot("mlp"), tuple(sorted(set(shapes)))))


def compatible_models(candidates: Sequence[str], task: Task) -> list[str]:
    """The ``candidates`` that are registered and take ``task``'s inputs and targets, sorted.

    A model's options are its own, so which models a space builds is the space's decision; a
    candidate whose family is not installed simply drops out."""
    registered = set(list_models())
    out = []
    for name in candidates:
        if name not in registered:
            continue
        try:
            check_compatible(get_model_entry(name), task)
        except ArchsmithError:
            continue
        out.append(name)
    return sorted(out)


def literal_choices(model: str, option: str) -> list[Any]:
    """The values a ``Literal``-typed option of a registered model takes, from its signature
    (so a gate or router added there becomes a choice), sorted."""
    hints = typing.get_type_hints(get_model_entry(model).factory, include_extras=True)
    annotation = hints[option]
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is not Literal:
        raise TypeError(f"{model}.{option} is not a Literal option")
    return sorted(typing.get_args(annotation))


def _key(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted(set(values)))
