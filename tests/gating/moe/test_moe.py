"""MoE: sort-based dispatch against a per-token loop (outputs, gradients, dropped counts),
router equations, auxiliary losses, the dense-to-sparse schedule, and use inside blocks."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import cast

import pytest
import torch
import torch.nn.functional as F

from archsmith.build import build, create_model
from archsmith.checkpoint import load_model, save_model
from archsmith.errors import ArchsmithError
from archsmith.gating.moe import (
    DenseToSparseRouter,
    MoE,
    NoisyTopKRouter,
    load_balancing_loss,
    moe_dispatch,
    moe_stats,
    router_z_loss,
)
from archsmith.gating.moe.naive import naive_dispatch, naive_moe
from archsmith.layers.aux_loss import collect_aux_loss, training_loss
from archsmith.registry import get_layer
from archsmith.tasks import get_task
from helpers import rel_err


def _moe(
    dim: int = 6,
    hidden: int = 5,
    experts: int = 4,
    k: int = 2,
    cf: float | None = None,
    router: str = "topk",
) -> MoE:
    layer = MoE(dim, hidden, num_experts=experts, top_k=k, router=router, capacity_factor=cf)
    with torch.no_grad():  # spread the logits so no two are near a tie
        layer.router.gate.weight.normal_()
    return layer.double()


def _params(layer: MoE) -> list[torch.Tensor]:
    return [layer.router.gate.weight, *layer.experts.parameters()]


@pytest.mark.parametrize(
    ("n", "experts", "k", "cf"),
    [(11, 4, 2, None), (11, 4, 2, 0.5), (7, 3, 1, None), (9, 5, 3, 0.6), (13, 8, 2, 1.0)],
)
def test_dispatch_matches_per_token_loop(n: int, experts: int, k: int, cf: float | None) -> None:
    layer = _moe(experts=experts, k=k, cf=cf)
    x = torch.randn(n, 6, dtype=torch.float64, requires_grad=True)
    out = layer(x)
    ref, dropped, dropped_tokens = naive_moe(layer, x)
    assert rel_err(out, ref) < 1e-12
    stats = layer.last_stats
    assert stats is not None
    assert stats.dropped_assignments == dropped
    assert stats.dropped_tokens == dropped_tokens
    assert stats.capacity == (None if cf is None else math.ceil(cf * n * k / experts))
    if cf is not None and cf < 1:
        assert dropped > 0  # the case really exercises dropping
    g = torch.randn_like(out)
    params = [x, *_params(layer)]
    grads = torch.autograd.grad(out, params, g, allow_unused=True)
    ref_grads = torch.autograd.grad(ref, params, g, allow_unused=True)
    for a, b in zip(grads, ref_grads, strict=True):
        if b is None:  # an expert that got no tokens: zero gradient on the fast path
            assert a is None or a.abs().max() == 0
        else:
            assert a is not None and rel_err(a, b) < 1e-10


def test_dropped_tokens_pass_as_zero() -> None:
    layer = _moe(experts=2, k=1, cf=0.25)  # capacity ceil(0.25 * 8 / 2) = 1 per expert
    x = torch.randn(8, 6, dtype=torch.float64)
    out = layer(x)
    stats = layer.last_stats
    assert stats is not None and stats.capacity == 1
    assert stats.dropped_tokens == 8 - sum(stats.expert_load) == 6
    zero_rows = (out.abs().sum(-1) == 0).sum()
    assert int(zero_rows) == stats.dropped_tokens
    assert layer.stats["dropped_tokens"] == 6 and layer.stats["forwards"] == 1


def test_masked_dispatch_matches_loop() -> None:
    torch.manual_seed(1)
    experts = [torch.nn.Linear(4, 3).double() for _ in range(3)]
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    ids = torch.stack([torch.randperm(3) for _ in range(6)])  # [6, 3]
    w = torch.rand(6, 3, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(6, 3) < 0.6
    mask[:, 0] = True
    for cf in (None, 0.7):
        out, stats = moe_dispatch(x, experts, ids, w * mask, mask, cf)
        ref, dropped, dropped_tokens = naive_dispatch(
            x, experts, ids.tolist(), list(map(list, (w * mask).unbind(0))), mask.tolist(), cf
        )
        assert rel_err(out, ref) < 1e-12
        assert (stats.dropped_assignments, stats.dropped_tokens) == (dropped, dropped_tokens)
        g = torch.randn_like(out)
        a = torch.autograd.grad(out, [x, w], g)
        b = torch.autograd.grad(ref, [x, w], g)
        assert all(rel_err(p, q) < 1e-10 for p, q in zip(a, b, strict=True))


def test_noisy_top_k_uses_given_noise_in_training_only() -> None:
    layer = _moe(router="noisy_topk", cf=0.75)
    with torch.no_grad():
        noise_w = cast(torch.nn.Linear, layer.router.noise).weight
        noise_w.normal_()
    x = torch.randn(10, 6, dtype=torch.float64, requires_grad=True)
    eps = torch.randn(10, 4, dtype=torch.float64)
    routing = layer.router(x, eps=eps)
    out, _ = moe_dispatch(
        x, list(layer.experts), routing.experts, routing.weights, None, layer.capacity_factor
    )
    ref, _, _ = naive_moe(layer, x, eps)
    assert rel_err(out, ref) < 1e-12
    grads = torch.autograd.grad(out.square().sum(), [x, noise_w])
    ref_grads = torch.autograd.grad(ref.square().sum(), [x, noise_w])
    assert all(rel_err(a, b) < 1e-10 for a, b in zip(grads, ref_grads, strict=True))
    layer.eval()
    assert rel_err(layer(x), naive_moe(layer, x)[0]) < 1e-12  # eval: no noise at all


def test_top_k_softmax_equals_renormalized_full_softmax() -> None:
    layer = _moe(experts=6, k=3)
    x = torch.randn(5, 6, dtype=torch.float64)
    routing = layer.router(x)
    full = F.softmax(x @ layer.router.gate.weight.T, dim=-1)
    picked = full.gather(1, routing.experts)
    assert rel_err(routing.weights, picked / picked.sum(-1, keepdim=True)) < 1e-12


def test_load_balancing_loss_hand_computed() -> None:
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]])
    ids = torch.tensor([[0], [0], [0], [1]])
    # f = (3/4, 1/4), P = (0.65, 0.35): 2 * (0.75 * 0.65 + 0.25 * 0.35) = 1.15
    assert float(load_balancing_loss(probs, ids)) == pytest.approx(1.15)
    uniform = torch.full((4, 2), 0.5)
    assert float(load_balancing_loss(uniform, torch.tensor([[0], [1], [0], [1]]))) == 1.0
    mask = torch.tensor([[True], [True], [False], [True]])  # masked choice not counted
    # f = (2/3, 1/3): 2 * (2/3 * 0.65 + 1/3 * 0.35) = 1.1
    assert float(load_balancing_loss(probs, ids, mask)) == pytest.approx(1.1)


def test_router_z_loss_hand_computed() -> None:
    assert float(router_z_loss(torch.zeros(3, 4))) == pytest.approx(math.log(4) ** 2)
    logits = torch.tensor([[0.0, math.log(3.0)]])  # logsumexp = log 4
    assert float(router_z_loss(logits)) == pytest.approx(math.log(4) ** 2)


def test_aux_loss_in_training_only() -> None:
    layer = MoE(8, 16, num_experts=4, z_loss_weight=1e-3)
    x = torch.randn(2, 5, 8)
    assert layer(x).shape == (2, 5, 8)
    routing = layer.router(x.reshape(-1, 8))
    expected = 0.01 * load_balancing_loss(routing.probs, routing.experts) + 1e-3 * router_z_loss(
        routing.logits
    )
    assert layer.aux_loss is not None and float(layer.aux_loss.detach()) == pytest.approx(
        float(expected.detach())
    )
    layer.eval()
    layer(x)
    assert layer.aux_loss is None


def test_gradcheck_float64() -> None:
    layer = _moe(dim=3, hidden=4, experts=3, k=2, cf=None)
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))


def test_dense_to_sparse_schedule_and_checkpoint(tmp_path: Path) -> None:
    router = DenseToSparseRouter(4, 8, tau_max=2.0, tau_min=0.1, anneal_steps=10)
    assert router.temperature == pytest.approx(2.0)
    x = torch.randn(16, 4)
    dense = router(x)  # near-uniform weights at tau = 2: every expert used
    assert bool(dense.mask.all())
    for _ in range(4):
        router(x)
    assert int(router.step) == 5
    assert router.temperature == pytest.approx(2.0 * (0.1 / 2.0) ** 0.5)
    router.eval()
    router(x)
    assert int(router.step) == 5  # eval forwards do not advance the schedule
    save_model(tmp_path / "r.safetensors", router)
    resumed = DenseToSparseRouter(4, 8, tau_max=2.0, tau_min=0.1, anneal_steps=10)
    load_model(tmp_path / "r.safetensors", resumed)
    assert int(resumed.step) == 5 and resumed.temperature == router.temperature
    with torch.no_grad():
        resumed.step.fill_(100)
        resumed.gate.weight.mul_(100)  # distinct logits: at tau_min the gate is one-hot
    assert resumed.temperature == pytest.approx(0.1)
    sparse = resumed(x)
    assert sparse.mask.sum(-1).float().mean() < 1.5
    p = torch.softmax(x @ resumed.gate.weight.T / 0.1, -1)
    used = p >= resumed.threshold
    used[torch.arange(16), p.argmax(-1)] = True
    assert torch.equal(sparse.mask.sum(-1), used.sum(-1))


def test_dts_router_in_moe_layer_matches_loop() -> None:
    layer = MoE(6, 5, num_experts=4, router="dts", capacity_factor=0.8).double()
    x = torch.randn(9, 6, dtype=torch.float64)
    out = layer.eval()(x)
    routing = layer.router(x)
    ref, dropped, _ = naive_dispatch(
        x,
        list(layer.experts),
        routing.experts.tolist(),
        list(map(list, routing.weights.unbind(0))),
        routing.mask.tolist(),
        0.8,
    )
    assert rel_err(out, ref) < 1e-12
    assert layer.last_stats is not None and layer.last_stats.dropped_assignments == dropped


def test_bad_options_raise() -> None:
    with pytest.raises(ArchsmithError, match="top_k"):
        MoE(4, 8, num_experts=2, top_k=3)
    with pytest.raises(ArchsmithError, match="router"):
        MoE(4, 8, router="nope")
    with pytest.raises(ArchsmithError, match="capacity_factor"):
        MoE(4, 8, capacity_factor=0.0)


def test_registered_as_mlp_layer_and_trains_in_a_transformer() -> None:
    assert get_layer("mlp", "moe") is MoE
    task = get_task("digits")
    torch.manual_seed(0)
    model = create_model("transformer", task=task, dim=16, depth=1, mlp_layer="moe")
    x, y = task.example_batch(16)
    loss = training_loss(model, x, y, task.loss)
    aux = collect_aux_loss(model)
    assert aux is not None and float(aux.detach()) > 0
    expected = (task.loss(model(x), y) + aux).detach()
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-6)
    # the trainer's objective trains the router through the balancing loss
    model.zero_grad()
    loss.backward()
    moe = next(m for m in model.modules() if isinstance(m, MoE))
    router_grad = moe.router.gate.weight.grad
    assert router_grad is not None and router_grad.abs().sum() > 0
    from archsmith.train import TrainConfig, fit

    result = fit(model, task, TrainConfig(epochs=1, batch_size=128), progress=False)
    assert math.isfinite(result.val["loss"])


def test_partial_options_and_spec_block() -> None:
    moe = functools.partial(MoE, num_experts=3, top_k=1, router="noisy_topk")
    model = create_model("transformer", task="digits", dim=8, depth=1, mlp_layer=moe)
    layers = [m for m in model.modules() if isinstance(m, MoE)]
    assert len(layers) == 1 and layers[0].num_experts == 3
    assert isinstance(layers[0].router, NoisyTopKRouter) and layers[0].router.top_k == 1
    spec = {
        "task": "digits",
        "blocks": [{"type": "embed", "dim": 8}, {"type": "transformer", "mlp_layer": "moe"}],
    }
    net = build(spec)
    x, _ = get_task("digits").example_batch(4)
    assert net(x).shape == (4, 10)


def test_moe_stats_sum_every_layer() -> None:
    torch.manual_seed(0)
    mlp = functools.partial(MoE, num_experts=4, top_k=2, capacity_factor=0.5)
    model = create_model("transformer", task="digits", dim=8, depth=2, mlp_layer=mlp)
    assert moe_stats(model)["layers"] == 2
    x, _ = get_task("digits").example_batch(6)
    model(x)
    model(x[:3])
    layers = [m for m in model.modules() if isinstance(m, MoE)]
    totals = moe_stats(model)
    assert totals["forwards"] == 4
    assert totals["dropped_tokens"] == sum(m.stats["dropped_tokens"] for m in layers)
    assert totals["dropped_assignments"] > 0  # capacity 0.5: drops by construction
    assert totals["tokens"] == sum(m.stats["tokens"] for m in layers)
    for m in layers:
        m.reset_stats()
    assert moe_stats(model)["dropped_assignments"] == 0
    assert moe_stats(torch.nn.Linear(2, 2))["layers"] == 0


def test_dts_anneal_steps_reach_the_model_option() -> None:
    task = get_task("digits")
    model = create_model("moe_transformer", task=task, dim=8, depth=2, router="dts", anneal_steps=3)
    routers = [m.router for m in model.modules() if isinstance(m, MoE)]
    assert len(routers) == 2 and all(isinstance(r, DenseToSparseRouter) for r in routers)
    x, _ = task.example_batch(4)
    for _ in range(3):
        model(x)
    for r in routers:
        assert isinstance(r, DenseToSparseRouter)
        assert int(r.step) == 3 and r.temperature == pytest.approx(r.tau_min)
