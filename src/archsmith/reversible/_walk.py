"""Fast walks over a module tree, for the engine's per-block work in backward.

``nn.Module.modules()`` / ``parameters()`` build qualified names and run generators; in a deep
reversible stack they are called for every block on every step, where that bookkeeping showed
up in profiles. These walks visit the same objects without the names.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["submodules", "trainable_parameters"]


def submodules(module: nn.Module) -> list[nn.Module]:
    """``module`` and all its descendants, breadth first (a module reachable twice is listed
    twice: callers must not mind)."""
    out = [module]
    i = 0
    while i < len(out):
        out.extend([c for c in out[i]._modules.values() if c is not None])
        i += 1
    return out


def trainable_parameters(module: nn.Module) -> list[Tensor]:
    """The parameters of ``module`` (and descendants) that require grad, each once."""
    seen: set[int] = set()
    out: list[Tensor] = []
    for m in submodules(module):
        for p in m._parameters.values():
            if p is not None and p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                out.append(p)
    return out
