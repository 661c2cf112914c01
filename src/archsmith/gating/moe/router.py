"""Routers of a mixture of experts: which experts each token goes to, and with what weight.

Every router maps tokens ``x: [N, D]`` to a :class:`Routing`: ``K`` candidate experts per token
(``experts: [N, K]``), their combine weights (``weights: [N, K]``), which candidates are really
used (``mask: [N, K]``), and the full softmax ``probs: [N, E]`` and ``logits: [N, E]`` the
auxiliary losses need.

- :class:`TopKRouter` — top-k sparse softmax gating, ``G(x) = softmax(TopK(W x))``, the gate
  studied in "Statistical Perspective of Top-K Sparse Softmax Gating Mixture of Experts"
  (Nguyen et al., ICLR 2024). The softmax runs over the k selected logits only; this is the
  same as a softmax over all experts followed by top-k and renormalization (``exp(l_i) /
  sum_{j in topk} exp(l_j)`` either way), so the two conventions agree exactly.
- :class:`NoisyTopKRouter` — noisy top-k gating (Shazeer et al., 2017, "Outrageously Large
  Neural Networks"): in training, ``H(x) = W_g x + eps * softplus(W_noise x)`` with
  ``eps ~ N(0, 1)``, then top-k softmax of ``H``; no noise in eval.
- :class:`DenseToSparseRouter` — dense-to-sparse temperature gating (DTS-Gate, Nie et al., 2021;
  analysed in "Is Temperature Sample Efficient for Softmax Gaussian Mixture of Experts?",
  Nguyen et al., ICML 2024): ``p = softmax(act(W x) / tau)``, each token goes to every expert
  with ``p >= threshold`` (at least its best one). ``tau`` starts high (nearly uniform ``p``:
  every expert used, dense) and is annealed exponentially to ``tau_min`` over
  ``anneal_steps`` training forwards (sparse). The step count lives in a buffer, so it is
  saved with the weights and a resumed run continues the schedule. ``activation="tanh"`` is the
  activation dense-to-sparse gate Nguyen et al. propose to restore sample efficiency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archsmith.errors import ArchsmithError

__all__ = [
    "ROUTERS",
    "DenseToSparseRouter",
    "NoisyTopKRouter",
    "Router",
    "Routing",
    "TopKRouter",
    "make_router",
]

RouterName = Literal["topk", "noisy_topk", "dts"]


@dataclass(frozen=True)
class Routing:
    """What a router decided for ``N`` tokens over ``E`` experts, ``K`` candidates each.

    Attributes:
        experts: ``[N, K]`` expert ids; column ``j`` is every token's ``j``-th choice.
        weights: ``[N, K]`` combine weights (differentiable; 0 where ``mask`` is False).
        mask: ``[N, K]`` which candidates are used (all True for top-k routers).
        probs: ``[N, E]`` softmax over all experts (the ``P_e`` of the balancing loss).
        logits: ``[N, E]`` the router logits (for the z-loss).
    """

    experts: Tensor
    weights: Tensor
    mask: Tensor
    probs: Tensor
    logits: Tensor


class Router(nn.Module):
    """Base class: a linear scoring ``W x`` (no bias, as in Switch/GShard) and :meth:`route`.

    Contract: ``forward(x: [N, D]) -> Routing`` with the shapes of :class:`Routing`; the
    weights of masked-out candidates are 0 and each token keeps at least one candidate.
    ``top_k`` is the number K of candidate columns.
    """

    top_k: int

    def __init__(self, dim: int, num_experts: int) -> None:
        super().__init__()
        if num_experts < 1:
            raise ArchsmithError(f"num_experts: must be >= 1, got {num_experts}")
        self.num_experts = num_experts
        self.gate = nn.Linear(dim, num_experts, bias=False)
        # small init: near-uniform routing at the start, so every expert gets tokens
        nn.init.normal_(self.gate.weight, std=0.02)

    def forward(self, x: Tensor) -> Routing:  # pragma: no cover - abstract
        raise NotImplementedError


def _check_top_k(top_k: int, num_experts: int) -> None:
    if not 1 <= top_k <= num_experts:
        raise ArchsmithError(f"top_k: must be in [1, num_experts={num_experts}], got {top_k}")


def _top_k_softmax(logits: Tensor, top_k: int) -> tuple[Tensor, Tensor]:
    """``(weights [N, k], experts [N, k])``: softmax over the k largest logits of each row."""
    top, experts = logits.topk(top_k, dim=-1)  # sorted: column 0 is each token's best expert
    return top.softmax(dim=-1), experts


class TopKRouter(Router):
    """Top-k sparse softmax gating ``softmax(TopK(W x, k))`` (Nguyen et al., ICLR 2024).

    Args:
        dim: token width D. num_experts: E. top_k: k experts per token.
    """

    def __init__(self, dim: int, num_experts: int, top_k: int = 2) -> None:
        super().__init__(dim, num_experts)
        _check_top_k(top_k, num_experts)
        self.top_k = top_k

    def forward(self, x: Tensor) -> Routing:
        logits = self.gate(x)  # [N, E]
        weights, experts = _top_k_softmax(logits, self.top_k)
        mask = torch.ones_like(experts, dtype=torch.bool)
        return Routing(experts, weights, mask, logits.softmax(-1), logits)


class NoisyTopKRouter(Router):
    """Noisy top-k gating (Shazeer et al., 2017): ``softmax(TopK(W_g x + eps softplus(W_n x)))``.

    The noise (``eps ~ N(0, 1)``, one draw per token and expert) is added in training only; the
    noise scale ``softplus(W_n x)`` is learned per token, starting at zero weights (scale
    ``softplus(0) = 0.69``).

    Args:
        dim: token width D. num_experts: E. top_k: k experts per token.
    """

    def __init__(self, dim: int, num_experts: int, top_k: int = 2) -> None:
        super().__init__(dim, num_experts)
        _check_top_k(top_k, num_experts)
        self.top_k = top_k
        self.noise = nn.Linear(dim, num_experts, bias=False)
        nn.init.zeros_(self.noise.weight)

    def forward(self, x: Tensor, eps: Tensor | None = None) -> Routing:
        """``eps: [N, E]`` overrides the standard-normal draw (tests); ignored in eval."""
        logits = self.gate(x)  # [N, E]
        if self.training:
            eps = torch.randn_like(logits) if eps is None else eps
            logits = logits + eps * F.softplus(self.noise(x))
        weights, experts = _top_k_softmax(logits, self.top_k)
        mask = torch.ones_like(experts, dtype=torch.bool)
        return Routing(experts, weights, mask, logits.softmax(-1), logits)


class DenseToSparseRouter(Router):
    """Dense-to-sparse temperature gating (Nie et al., 2021; Nguyen et al., ICML 2024).

    ``p = softmax(act(W x) / tau)``; token ``n`` uses expert ``e`` when ``p[n, e] >= threshold``
    (its best expert always), with weight ``p[n, e]`` (no renormalization: the weights shrink
    toward a one-hot gate as ``tau`` falls). ``tau = max(tau_min, tau_max * (tau_min /
    tau_max) ** (step / anneal_steps))``; ``step`` counts training-mode forwards.

    Args:
        dim: token width D. num_experts: E.
        tau_max, tau_min: start and end temperature (> 0). anneal_steps: steps from one to the
            other. threshold: smallest gate probability an expert is used with.
        activation: ``"none"`` (linear gate) or ``"tanh"`` (activation dense-to-sparse gate).
    """

    def __init__(
        self,
        dim: int,
        num_experts: int,
        *,
        tau_max: float = 2.0,
        tau_min: float = 0.1,
        anneal_steps: int = 1000,
        threshold: float = 0.1,
        activation: Literal["none", "tanh"] = "none",
    ) -> None:
        super().__init__(dim, num_experts)
        if not 0 < tau_min <= tau_max:
            raise ArchsmithError(f"tau: need 0 < tau_min <= tau_max, got {tau_min}, {tau_max}")
        if anneal_steps < 1:
            raise ArchsmithError(f"anneal_steps: must be >= 1, got {anneal_steps}")
        if not 0 <= threshold < 1:
            raise ArchsmithError(f"threshold: must be in [0, 1), got {threshold}")
        self.tau_max, self.tau_min = tau_max, tau_min
        self.anneal_steps, self.threshold = anneal_steps, threshold
        self.activation = activation
        self.top_k = num_experts  # candidates per token; the mask picks the used ones
        # a persistent buffer: saved in checkpoints, so resuming continues the schedule
        self.step: Tensor
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @property
    def temperature(self) -> float:
        """The current ``tau`` (from the buffered step count)."""
        frac = min(1.0, int(self.step) / self.anneal_steps)
        return max(self.tau_min, self.tau_max * (self.tau_min / self.tau_max) ** frac)

    def forward(self, x: Tensor) -> Routing:
        logits = self.gate(x)  # [N, E]
        if self.activation == "tanh":
            logits = torch.tanh(logits)
        tau = self.temperature
        if self.training:
            self.step += 1
        probs = (logits / tau).softmax(-1)
        weights, experts = probs.sort(dim=-1, descending=True)  # [N, E] each
        mask = weights >= self.threshold
        mask[:, 0] = True
        weights = weights * mask
        return Routing(experts, weights, mask, probs, logits)


ROUTERS: dict[str, type[Router]] = {
    "topk": TopKRouter,
    "noisy_topk": NoisyTopKRouter,
    "dts": DenseToSparseRouter,
}


def make_router(
    name: str, dim: int, num_experts: int, top_k: int, *, anneal_steps: int = 1000
) -> Router:
    """The router ``name`` (``topk``, ``noisy_topk``, ``dts``) for ``num_experts`` experts;
    ``anneal_steps`` is the dense-to-sparse schedule's length (``dts`` only)."""
    if name not in ROUTERS:
        raise ArchsmithError(f"router: unknown router {name!r}; choose from {', '.join(ROUTERS)}")
    if name == "dts":
        return DenseToSparseRouter(dim, num_experts, anneal_steps=anneal_steps)
    return ROUTERS[name](dim, num_experts, top_k)  # type: ignore[call-arg]
