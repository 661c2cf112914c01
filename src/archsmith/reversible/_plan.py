"""What the engine needs to know about each block, gathered in one walk per training step.

The reversible backward visits every block and, inside it, every coupling function: it needs
their trainable parameters (the inputs of ``torch.autograd.grad``) and their stateful modules
(BatchNorm whose running statistics must not move during the recompute, other modules with
buffers to set aside). Walking the module tree for each of those, block by block, cost about as
much as the arithmetic of a small Transformer block; :func:`plan_blocks` walks it once, in
forward, and the backward reads the lists.

The plan describes the modules as they are at forward time (which modules are in training
mode, which parameters may need gradients); the backward still skips a parameter frozen since
(``requires_grad`` switched off between forward and backward), as plain autograd does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from archsmith.reversible._walk import parameters_requiring_grad, submodules
from archsmith.reversible.couplings import Coupling, MultiSplitCoupling

__all__ = ["BlockPlan", "plan_blocks"]


@dataclass(frozen=True)
class BlockPlan:
    """One block's parameters and stateful modules.

    Attributes:
        params: its trainable parameters, each once.
        fn_params: for a multi-split coupling, the trainable parameters of each function
            (``fns[i]``), else None.
        batchnorms: BatchNorm modules in training mode that track running statistics, with
            torch's own forward (the recompute switches their tracking off).
        buffered: other modules in training mode that hold buffers (they recompute on copies
            of them).
    """

    params: list[Tensor]
    fn_params: list[list[Tensor]] | None
    batchnorms: list[_BatchNorm]
    buffered: list[nn.Module]


def _block_plan(block: Coupling) -> BlockPlan:
    fn_params: list[list[Tensor]] | None = None
    if isinstance(block, MultiSplitCoupling):
        per_fn = [submodules(fn) for fn in block.fns]
        fn_params = [parameters_requiring_grad(mods) for mods in per_fn]
        modules = submodules(block, skip=block.fns) + [m for mods in per_fn for m in mods]
    else:
        modules = submodules(block)
    batchnorms: list[_BatchNorm] = []
    buffered: list[nn.Module] = []
    for m in modules:
        if not m.training:
            continue
        if isinstance(m, _BatchNorm) and type(m).forward is _BatchNorm.forward:
            # torch's own forward skips the update when track_running_stats is off
            if m.track_running_stats:
                batchnorms.append(m)
        elif any(b is not None for b in m._buffers.values()):
            buffered.append(m)
    return BlockPlan(parameters_requiring_grad(modules), fn_params, batchnorms, buffered)


def plan_blocks(
    owner: nn.Module, blocks: Sequence[Coupling]
) -> tuple[list[BlockPlan], list[Tensor]]:
    """The plans of ``blocks`` and the trainable parameters of ``owner`` (which holds them),
    each once: the blocks' and any of ``owner``'s own."""
    plans = [_block_plan(b) for b in blocks]
    seen: set[int] = set()
    params: list[Tensor] = []
    for group in [parameters_requiring_grad([owner])] + [p.params for p in plans]:
        for p in group:
            if id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    return plans, params
