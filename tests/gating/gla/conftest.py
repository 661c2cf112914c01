"""Shared GLA test inputs: random ``q, k, v, g, S_0`` and a runner that returns outputs, final
states and the gradients of every input for one upstream gradient."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F


@dataclass
class GLACase:
    q: torch.Tensor  # [B, T, H, D]
    k: torch.Tensor
    v: torch.Tensor  # [B, T, H, Dv]
    g: torch.Tensor  # [B, T, H, D], <= 0
    initial: torch.Tensor | None  # [B, H, D, Dv]
    grad_o: torch.Tensor
    grad_final: torch.Tensor

    def run(
        self, op: Callable[..., tuple[torch.Tensor, torch.Tensor | None]], **kw: object
    ) -> list[torch.Tensor]:
        """``[o, S_T, dq, dk, dv, dg(, dS_0)]`` of ``op`` on this case."""
        inputs = [x.detach().clone().requires_grad_() for x in (self.q, self.k, self.v, self.g)]
        init = None if self.initial is None else self.initial.detach().clone().requires_grad_()
        o, final = op(*inputs, initial_state=init, output_final_state=True, **kw)
        assert final is not None
        loss = (o * self.grad_o).sum() + (final * self.grad_final).sum()
        leaves = inputs + ([] if init is None else [init])
        return [o.detach(), final.detach(), *torch.autograd.grad(loss, leaves)]

    def to(self, dtype: torch.dtype) -> GLACase:
        def cast(x: torch.Tensor | None) -> torch.Tensor | None:
            return None if x is None else x.to(dtype)

        return GLACase(*(cast(x) for x in vars(self).values()))  # type: ignore[arg-type]


def make_case(
    b: int = 2,
    t: int = 37,
    h: int = 3,
    d: int = 8,
    dv: int = 6,
    *,
    initial: bool = True,
    gate_scale: float = 1.0,
    dtype: torch.dtype = torch.float64,
    seed: int = 0,
) -> GLACase:
    """Random inputs; ``g = logsigmoid(x) * gate_scale`` (the paper's normaliser is 1/16)."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=dtype)

    return GLACase(
        q=rand(b, t, h, d),
        k=rand(b, t, h, d),
        v=rand(b, t, h, dv),
        g=F.logsigmoid(rand(b, t, h, d)) * gate_scale,
        initial=rand(b, h, d, dv) if initial else None,
        grad_o=rand(b, t, h, dv),
        grad_final=rand(b, h, d, dv),
    )


@pytest.fixture
def case_factory() -> Callable[..., GLACase]:
    return make_case
