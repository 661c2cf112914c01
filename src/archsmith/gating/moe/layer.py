"""The mixture-of-experts MLP, registered as ``mlp_layer="moe"`` for any archsmith block."""

from __future__ import annotations

from torch import Tensor, nn

from archsmith.errors import ArchsmithError
from archsmith.gating.moe.dispatch import DispatchStats, moe_dispatch
from archsmith.gating.moe.losses import load_balancing_loss, router_z_loss
from archsmith.gating.moe.router import Router, make_router
from archsmith.registry import LayerArg, get_layer, register_layer

__all__ = ["MoE", "moe_stats"]


@register_layer("mlp", "moe")
class MoE(nn.Module):
    """Mixture of expert MLPs with a learned router, ``[..., dim] -> [..., dim]``.

    Each of ``num_experts`` experts is the dense MLP ``linear(dim, hidden) -> act ->
    linear(hidden, dim)`` (built with the block's ``act_layer`` / ``linear_layer``); each token
    is sent to ``top_k`` of them by the router and gets the weighted sum of their outputs
    (Shazeer et al., 2017; Lepikhin et al., 2020, GShard; Fedus et al., 2021, Switch). Tokens
    are dispatched by sorting (:func:`~archsmith.gating.moe.dispatch.moe_dispatch`).

    In a training-mode forward ``self.aux_loss`` is set to ``aux_loss_weight * E * sum_e f_e P_e``
    (load balancing) plus ``z_loss_weight * mean logsumexp(logits)^2`` (router z-loss); it is
    None in eval. The trainer adds it to the task loss. ``self.last_stats`` holds the last
    forward's :class:`~archsmith.gating.moe.dispatch.DispatchStats` (dropped tokens, expert
    load) and ``self.stats`` running totals since construction or :meth:`reset_stats`.

    Args:
        dim: token width D. hidden: each expert's hidden width.
        act_layer, linear_layer, dropout: the experts' activation, linear layer type, dropout.
        num_experts: E. top_k: experts per token (``topk`` and ``noisy_topk`` routers).
        router: ``"topk"`` (top-k softmax), ``"noisy_topk"`` (Shazeer et al.) or ``"dts"``
            (dense-to-sparse temperature gating), or a :class:`Router` instance.
        capacity_factor: each expert takes at most ``ceil(capacity_factor * N * k / E)``
            tokens per forward; the rest are dropped (zero output). None: no limit.
        aux_loss_weight: weight of the load-balancing loss. z_loss_weight: of the z-loss.
        anneal_steps: training forwards over which the ``dts`` router's temperature falls from
            ``tau_max`` to ``tau_min`` (size it to the run: epochs x batches per epoch).

    Use ``functools.partial(MoE, num_experts=4, top_k=1)`` as a block's ``mlp_layer`` to change
    the defaults.
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        *,
        act_layer: LayerArg = "gelu",
        linear_layer: LayerArg = "dense",
        dropout: float = 0.0,
        num_experts: int = 8,
        top_k: int = 2,
        router: str | Router = "topk",
        capacity_factor: float | None = 1.25,
        aux_loss_weight: float = 0.01,
        z_loss_weight: float = 0.0,
        anneal_steps: int = 1000,
    ) -> None:
        super().__init__()
        if capacity_factor is not None and capacity_factor <= 0:
            raise ArchsmithError(f"capacity_factor: must be > 0, got {capacity_factor}")
        if aux_loss_weight < 0 or z_loss_weight < 0:
            raise ArchsmithError("aux_loss_weight / z_loss_weight: must be >= 0")
        self.router = (
            router
            if isinstance(router, Router)
            else make_router(router, dim, num_experts, top_k, anneal_steps=anneal_steps)
        )
        dense = get_layer("mlp", "dense")
        self.experts = nn.ModuleList(
            dense(dim, hidden, act_layer=act_layer, linear_layer=linear_layer, dropout=dropout)
            for _ in range(self.router.num_experts)
        )
        self.capacity_factor = capacity_factor
        self.aux_loss_weight, self.z_loss_weight = aux_loss_weight, z_loss_weight
        self.aux_loss: Tensor | None = None
        self.last_stats: DispatchStats | None = None
        self.stats: dict[str, int] = {}
        self.reset_stats()

    @property
    def num_experts(self) -> int:
        return len(self.experts)

    def reset_stats(self) -> None:
        """Zero the running totals in ``self.stats``."""
        self.stats = {"forwards": 0, "tokens": 0, "dropped_tokens": 0, "dropped_assignments": 0}

    def forward(self, x: Tensor) -> Tensor:
        """``x: [..., D] -> [..., D]``; all leading dimensions are tokens."""
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])  # [N, D]
        routing = self.router(tokens)
        y, stats = moe_dispatch(
            tokens,
            list(self.experts),
            routing.experts,
            routing.weights,
            routing.mask,
            self.capacity_factor,
        )
        self._record(stats)
        if self.training:
            aux = self.aux_loss_weight * load_balancing_loss(
                routing.probs, routing.experts, routing.mask
            )
            if self.z_loss_weight > 0:
                aux = aux + self.z_loss_weight * router_z_loss(routing.logits)
            self.aux_loss = aux
        else:
            self.aux_loss = None
        return y.reshape(*shape[:-1], y.shape[-1])

    def _record(self, stats: DispatchStats) -> None:
        self.last_stats = stats
        self.stats["forwards"] += 1
        self.stats["tokens"] += stats.tokens
        self.stats["dropped_tokens"] += stats.dropped_tokens
        self.stats["dropped_assignments"] += stats.dropped_assignments

    def extra_repr(self) -> str:
        k = getattr(self.router, "top_k", "?")
        return (
            f"num_experts={self.num_experts}, top_k={k}, router={type(self.router).__name__}, "
            f"capacity_factor={self.capacity_factor}"
        )


def moe_stats(model: nn.Module) -> dict[str, int]:
    """Running totals (``forwards``, ``tokens``, ``dropped_tokens``, ``dropped_assignments``)
    summed over every :class:`MoE` layer of ``model`` (zeros when it has none): how many tokens
    the capacity limit dropped since construction or each layer's :meth:`MoE.reset_stats`."""
    total = {"layers": 0, "forwards": 0, "tokens": 0, "dropped_tokens": 0, "dropped_assignments": 0}
    for module in model.modules():
        if isinstance(module, MoE):
            total["layers"] += 1
            for key, value in module.stats.items():
                total[key] += value
    return total
