"""Adaptive TT structure: greedy bond-rank growth from rank one.

Hashemizadeh, Liu, Miller and Rabusseau, "Adaptive Learning of Tensor Network Structures"
(2020): start from the smallest network, train it a little, then repeatedly try every edge with
its rank grown, keep the growth that lowers the loss most, and continue from there. For a TT
layer (:class:`~archsmith.tensornet.layers.TTLinear`, cores ``G_k: [r_{k-1}, m_k, n_k, r_k]``)
the edges are the ``d - 1`` bonds:

1. start at ranks ``(1, ..., 1)`` and train ``steps_per_round`` steps;
2. for every bond ``k`` below its cap whose growth by ``grow_by`` fits ``budget``: copy the
   layer, grow bond ``k`` with a function-preserving warm start (:func:`grow_bond`), train the
   copy ``trial_steps`` steps and record its loss;
3. keep the best copy if it lowers the loss by at least ``min_improvement`` (relative), train it
   ``steps_per_round`` steps; stop when the loss reaches ``loss_target``, no growth fits the
   budget, the best growth does not help, or after ``max_rounds`` rounds.

Warm start: the new right-bond slices of ``G_k`` are small random numbers and the new left-bond
slices of ``G_{k+1}`` are zero, so the grown layer computes exactly the same function (every new
term of the bond sum is multiplied by a zero slice), while the gradient on the zero slices is
not zero, so the new rank starts learning at once.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from archsmith.errors import ArchsmithError
from archsmith.tensornet.core import max_tt_ranks
from archsmith.tensornet.layers import TTLinear

__all__ = ["GrowthRound", "grow_bond", "grow_tt_ranks"]

LossFn = Callable[[TTLinear], torch.Tensor]


@dataclass
class GrowthRound:
    """One round of :func:`grow_tt_ranks`.

    Attributes:
        ranks: bond ranks after the round. params: the layer's parameters (bias included).
        loss: the loss after the round's training.
        grown: the bond grown this round (None for the first round and the final one).
        trials: ``{bond: loss after trial_steps}`` of every growth tried this round.
    """

    ranks: tuple[int, ...]
    params: int
    loss: float
    grown: int | None = None
    trials: dict[int, float] = field(default_factory=dict)


def grow_bond(layer: TTLinear, bond: int, by: int = 1, *, scale: float = 1e-2) -> TTLinear:
    """A copy of ``layer`` with bond ``bond`` (0-based, between cores ``bond`` and ``bond + 1``)
    grown by ``by``, computing exactly the same function.

    The new slices ``G_bond[..., r:]`` are normal with std ``scale`` times the std of
    ``G_bond``; the new ``G_{bond+1}[r:, ...]`` are zero (see the module docstring). Bias,
    modes, dtype and device are kept; the ranks may exceed the bond's exact cap.
    """
    d = len(layer.cores)
    if not 0 <= bond < d - 1:
        raise ArchsmithError(f"grow_bond: bond must be in [0, {d - 2}], got {bond}")
    if by < 1:
        raise ArchsmithError(f"grow_bond: by must be >= 1, got {by}")
    ranks = list(layer.ranks)
    ranks[bond] += by
    left, right = layer.cores[bond].detach(), layer.cores[bond + 1].detach()
    std = float(left.std()) if left.numel() > 1 else float(left.abs().mean())
    noise = torch.randn(*left.shape[:-1], by, dtype=left.dtype, device=left.device)
    new_left = torch.cat([left, noise * (scale * (std or 1.0))], dim=-1)
    new_right = torch.cat([right, right.new_zeros(by, *right.shape[1:])], dim=0)
    grown = _rebuild(layer, ranks)
    cores = [c.detach() for c in layer.cores]
    cores[bond], cores[bond + 1] = new_left, new_right
    with torch.no_grad():
        for p, c in zip(grown.cores, cores, strict=True):
            p.copy_(c)
        if layer.bias is not None:
            assert grown.bias is not None
            grown.bias.copy_(layer.bias)
    return grown


def _rebuild(layer: TTLinear, ranks: Sequence[int]) -> TTLinear:
    """An untrained TTLinear of ``layer``'s shape and modes at exactly ``ranks``."""
    new = copy.deepcopy(layer)
    new.ranks = tuple(ranks)
    full = (1, *ranks, 1)
    ref = layer.cores[0]
    new.cores = torch.nn.ParameterList(
        torch.nn.Parameter(
            torch.zeros(full[k], m, n, full[k + 1], dtype=ref.dtype, device=ref.device)
        )
        for k, (m, n) in enumerate(zip(layer.out_modes, layer.in_modes, strict=True))
    )
    return new


def _train(layer: TTLinear, loss_fn: LossFn, steps: int, lr: float) -> float:
    """``steps`` Adam steps on ``loss_fn(layer)``; returns the loss after them."""
    opt = torch.optim.Adam(layer.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(layer)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(loss_fn(layer))


def _start(layer_or_shape: TTLinear | Sequence[int], options: dict[str, Any]) -> TTLinear:
    if isinstance(layer_or_shape, TTLinear):
        if options:
            raise ArchsmithError(
                f"grow_tt_ranks: layer options {sorted(options)} only apply to a (in, out) shape"
            )
        return layer_or_shape
    shape = tuple(layer_or_shape)
    if len(shape) != 2:
        raise ArchsmithError(
            f"grow_tt_ranks: give a TTLinear or an (in_features, out_features) shape, got {shape}"
        )
    return TTLinear(shape[0], shape[1], rank=1, **options)


def grow_tt_ranks(
    layer_or_shape: TTLinear | Sequence[int],
    loss_fn: LossFn,
    *,
    budget: int | None = None,
    loss_target: float | None = None,
    steps_per_round: int = 200,
    trial_steps: int | None = None,
    grow_by: int = 1,
    max_rounds: int = 100,
    lr: float = 1e-2,
    min_improvement: float = 1e-3,
    init_scale: float = 1e-2,
    **layer_options: Any,
) -> tuple[TTLinear, list[GrowthRound]]:
    """Greedy TT bond-rank growth (see the module docstring).

    Args:
        layer_or_shape: a :class:`TTLinear` to start from (its ranks are the start; usually all
            ones), or ``(in_features, out_features)`` for a new rank-1 layer built with
            ``layer_options`` (``bias``, ``in_modes``, ``out_modes``, ``num_cores``).
        loss_fn: ``loss_fn(layer) -> scalar`` (e.g. a regression loss on fixed data), minimised
            by full-batch Adam at learning rate ``lr``.
        budget: maximum ``layer.num_params`` (bias included); None: no limit but the bond caps
            (the ranks of the exact TT-matrix).
        loss_target: stop once the loss is at or below it.
        steps_per_round: training steps of the start layer and of each kept growth.
        trial_steps: training steps of each tried growth (default ``steps_per_round // 2``).
        grow_by: rank added to a bond per growth.
        max_rounds: at most this many growths.
        min_improvement: keep a growth only if it lowers the loss by this fraction.
        init_scale: std of the new slices relative to the core's (:func:`grow_bond`).

    Returns:
        ``(layer, history)``: the grown layer (trained) and one :class:`GrowthRound` per round,
        the first being the start layer's.
    """
    if steps_per_round < 1 or max_rounds < 0 or grow_by < 1:
        raise ArchsmithError(
            "grow_tt_ranks: steps_per_round and grow_by must be >= 1 and max_rounds >= 0"
        )
    trial_steps = max(1, steps_per_round // 2) if trial_steps is None else trial_steps
    layer = _start(layer_or_shape, layer_options)
    if budget is not None and layer.num_params > budget:
        raise ArchsmithError(
            f"grow_tt_ranks: the start layer has {layer.num_params} parameters, over budget={budget}"
        )
    caps = max_tt_ranks([m * n for m, n in zip(layer.out_modes, layer.in_modes, strict=True)])
    loss = _train(layer, loss_fn, steps_per_round, lr)
    history = [GrowthRound(layer.ranks, layer.num_params, loss)]
    for _ in range(max_rounds):
        if loss_target is not None and loss <= loss_target:
            break
        trials: dict[int, tuple[float, TTLinear]] = {}
        for bond in range(len(layer.ranks)):
            if layer.ranks[bond] + grow_by > caps[bond]:
                continue
            cand = grow_bond(layer, bond, grow_by, scale=init_scale)
            if budget is not None and cand.num_params > budget:
                continue
            trials[bond] = (_train(cand, loss_fn, trial_steps, lr), cand)
        if not trials:
            break
        best = min(trials, key=lambda k: trials[k][0])
        tried = {k: v[0] for k, v in trials.items()}
        if not trials[best][0] < loss * (1.0 - min_improvement) or not math.isfinite(
            trials[best][0]
        ):
            history[-1].trials = tried
            break
        layer = trials[best][1]
        loss = _train(layer, loss_fn, steps_per_round, lr)
        history.append(GrowthRound(layer.ranks, layer.num_params, loss, best, tried))
    return layer, history
