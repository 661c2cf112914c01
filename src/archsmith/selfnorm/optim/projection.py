"""Scale-invariance test and radial projection shared by :class:`AdamP` and :class:`SGDP`.

Heo et al., "AdamP: Slowing Down the Slowdown for Momentum Optimizers on Scale-invariant
Weights", ICLR 2021 (arXiv:2006.08217), Section 3 and Algorithms 1-2.

A weight ``w`` followed by a normalization layer is *scale invariant*: ``f(c w) = f(w)`` for
every ``c > 0``. Differentiating that identity in ``c`` gives ``<grad f(w), w> = 0``: the gradient
is orthogonal to the weight. Plain gradient steps then only grow ``||w||`` (second order,
``||w + d||^2 = ||w||^2 + ||d||^2``), but momentum and Adam's per-coordinate scaling produce
updates with a *radial* component along ``w`` that inflates ``||w||`` quickly, and since the
effective step size on the sphere is ``lr / ||w||^2`` this makes training stall prematurely.

AdamP/SGDP remove that radial component from the update whenever the weight looks scale
invariant. The paper has no access to the network graph, so it detects invariance from the
current gradient: the weight is treated as invariant when ``|cos(grad, w)|`` is below
``delta / sqrt(dim)``, where ``dim`` is the size of the vector the cosine is taken over (the
cosine of two random vectors in ``dim`` dimensions is about ``1 / sqrt(dim)``, so this asks for
"far more orthogonal than chance"). Two views are tried in order, as in the paper:

1. **channel-wise** — rows of ``w.reshape(C_out, -1)``: invariance per output unit (BatchNorm
   after a conv or linear layer, weight standardization); the largest cosine over the channels
   must be below the threshold;
2. **layer-wise** — ``w.reshape(1, -1)``: invariance of the whole tensor (e.g. a layer followed
   by LayerNorm over all its outputs).

The first view that passes is used for the projection. Only tensors with ``ndim > 1`` are
tested: biases and normalization gains are not scale invariant in practice, and a 1-D tensor's
single "channel" would be a scalar.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple

from torch import Tensor

__all__ = [
    "ProjectionResult",
    "ViewName",
    "abs_cosine",
    "channel_view",
    "layer_view",
    "project_if_scale_invariant",
    "remove_radial",
]

ViewName = Literal["channel", "layer"]


def channel_view(x: Tensor) -> Tensor:
    """View ``x: [C, *rest]`` as ``[C, prod(rest)]``: one row per output channel."""
    return x.reshape(x.shape[0], -1)


def layer_view(x: Tensor) -> Tensor:
    """View ``x: [*shape]`` as ``[1, numel]``: the whole tensor as one vector."""
    return x.reshape(1, -1)


# Order matters: the paper tries the finer (channel-wise) invariance first.
_VIEWS: tuple[tuple[ViewName, Callable[[Tensor], Tensor]], ...] = (
    ("channel", channel_view),
    ("layer", layer_view),
)


def abs_cosine(a: Tensor, b: Tensor, eps: float) -> Tensor:
    """Row-wise ``|cos(a_i, b_i)|`` for ``a, b: [R, K]``; returns ``[R]``.

    Norms are clamped below at ``eps`` (as :func:`torch.nn.functional.cosine_similarity` does),
    so a zero row gives cosine 0 instead of NaN.
    """
    dot = (a * b).sum(dim=1)
    return dot.abs() / (a.norm(dim=1).clamp_min(eps) * b.norm(dim=1).clamp_min(eps))


def remove_radial(
    weight: Tensor, update: Tensor, view: Callable[[Tensor], Tensor], eps: float
) -> Tensor:
    """Return ``update`` minus its component along ``weight``, per row of ``view``.

    ``Pi_w(u) = u - (w_hat . u) w_hat`` with ``w_hat = w / (||w|| + eps)`` taken row by row of
    ``view(w)`` (``[R, K]``). The ``+ eps`` (not a clamp) follows the reference implementation;
    it leaves a radial remainder of relative size ``~ 2 eps / ||w||``, negligible for any
    non-degenerate weight. ``weight`` and ``update`` have the same shape; so does the result
    (a new tensor: ``update`` is not modified).
    """
    w = view(weight)  # [R, K]
    u = view(update)  # [R, K]
    w_hat = w / (w.norm(dim=1, keepdim=True) + eps)
    radial = (w_hat * u).sum(dim=1, keepdim=True)  # [R, 1]: length of u along w_hat
    return (u - radial * w_hat).reshape(update.shape)


class ProjectionResult(NamedTuple):
    """Outcome of :func:`project_if_scale_invariant`.

    Attributes:
        update: the (possibly projected) update, same shape as the weight.
        wd_scale: factor for the weight decay of this step: ``wd_ratio`` if projected, else 1.
        view: which invariance was detected (``"channel"`` or ``"layer"``), or ``None``.
    """

    update: Tensor
    wd_scale: float
    view: ViewName | None


def project_if_scale_invariant(
    weight: Tensor,
    grad: Tensor,
    update: Tensor,
    delta: float,
    wd_ratio: float,
    eps: float,
) -> ProjectionResult:
    """Project ``update`` onto the tangent space of ``weight`` if the weight looks scale invariant.

    Args:
        weight: the parameter before this step's update and weight decay, ``[C, *rest]``.
        grad: its gradient at this step (same shape), used only for the invariance test.
        update: the optimizer's raw update direction (same shape), e.g. Adam's
            ``m_hat / (sqrt(v_hat) + eps)`` or SGD's momentum buffer.
        delta: threshold: invariant when ``max |cos(grad, weight)| < delta / sqrt(dim)``.
            ``delta = 0`` disables the projection (a cosine is never negative).
        wd_ratio: weight-decay multiplier returned for projected weights. The paper scales
            decay down on them because decay is then the only force shrinking ``||w||``.
        eps: clamps norms in the cosine and is added to ``||w||`` in the projection.

    Returns:
        :class:`ProjectionResult`. Tensors with ``ndim <= 1`` (biases, gains) or no elements are
        never projected.
    """
    if weight.ndim <= 1 or weight.numel() == 0:
        return ProjectionResult(update, 1.0, None)
    for name, view in _VIEWS:
        w = view(weight)  # [R, K]
        threshold = delta / math.sqrt(w.shape[1])
        # One host sync per tensor and view: the branch decides the update's shape of work.
        if bool(abs_cosine(view(grad), w, eps).max() < threshold):
            return ProjectionResult(remove_radial(weight, update, view, eps), wd_ratio, name)
    return ProjectionResult(update, 1.0, None)
