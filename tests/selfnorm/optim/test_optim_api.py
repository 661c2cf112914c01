"""AdamP and SGDP as torch optimizers: defaults, validation, closures, groups, state dicts."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import archsmith.selfnorm.optim as optim_pkg
from archsmith.selfnorm.optim import SGDP, AdamP

Factory = Callable[..., torch.optim.Optimizer]

FACTORIES: dict[str, Factory] = {
    "adamp": lambda ps, **kw: AdamP(ps, **{"lr": 0.01, **kw}),
    "adamp-nesterov-wd": lambda ps, **kw: AdamP(
        ps, **{"lr": 0.01, "nesterov": True, "weight_decay": 0.1, **kw}
    ),
    "sgdp": lambda ps, **kw: SGDP(ps, **{"lr": 0.05, **kw}),
    "sgdp-momentum-wd": lambda ps, **kw: SGDP(
        ps, **{"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1, **kw}
    ),
}


def make_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3)
    )


def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(8, 2, 4, 4, generator=gen), torch.randint(0, 3, (8,), generator=gen)


def train_steps(net: nn.Module, opt: torch.optim.Optimizer, seeds: range) -> None:
    for seed in seeds:
        x, y = batch(seed)
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()


# ---- package surface and defaults -----------------------------------------------------------


def test_package_exports() -> None:
    assert set(optim_pkg.__all__) == {"AdamP", "SGDP"}
    assert issubclass(AdamP, torch.optim.Optimizer)
    assert issubclass(SGDP, torch.optim.Optimizer)


def test_adamp_defaults_are_the_papers() -> None:
    opt = AdamP([nn.Parameter(torch.zeros(2, 2))])
    d = opt.defaults
    assert d["lr"] == 1e-3 and tuple(d["betas"]) == (0.9, 0.999) and d["eps"] == 1e-8
    assert d["weight_decay"] == 0 and d["delta"] == 0.1 and d["wd_ratio"] == 0.1
    assert d["nesterov"] is False


def test_sgdp_defaults_are_the_papers_and_lr_is_required() -> None:
    with pytest.raises(TypeError):
        SGDP([nn.Parameter(torch.zeros(2, 2))])  # type: ignore[call-arg]
    d = SGDP([nn.Parameter(torch.zeros(2, 2))], lr=0.1).defaults
    assert d["momentum"] == 0 and d["dampening"] == 0 and d["weight_decay"] == 0
    assert d["nesterov"] is False and d["eps"] == 1e-8
    assert d["delta"] == 0.1 and d["wd_ratio"] == 0.1


# ---- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": -1.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"betas": (1.0, 0.999)}, r"betas\[0\]"),
        ({"betas": (0.9, -0.1)}, r"betas\[1\]"),
        ({"betas": (0.9,)}, "betas"),
        ({"eps": -1e-8}, "eps"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"delta": -0.1}, "delta"),
        ({"wd_ratio": -1.0}, "wd_ratio"),
        ({"nesterov": 1}, "nesterov"),
    ],
)
def test_adamp_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=f"AdamP: {match}"):
        AdamP([nn.Parameter(torch.zeros(2, 2))], **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": -1.0}, "lr"),
        ({"momentum": -0.1}, "momentum"),
        ({"momentum": 1.0}, "momentum"),
        ({"dampening": 1.5}, "dampening"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"eps": -1.0}, "eps"),
        ({"delta": -0.1}, "delta"),
        ({"wd_ratio": -1.0}, "wd_ratio"),
        ({"nesterov": True}, "nesterov=True needs momentum > 0"),
        ({"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov=True needs"),
    ],
)
def test_sgdp_rejects_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    kwargs = {"lr": 0.1, **kwargs}
    with pytest.raises(ValueError, match=f"SGDP: {match}"):
        SGDP([nn.Parameter(torch.zeros(2, 2))], **kwargs)


@pytest.mark.parametrize("name", ["adamp", "sgdp"])
def test_add_param_group_validates_overrides(name: str) -> None:
    opt = FACTORIES[name]([nn.Parameter(torch.zeros(2, 2))])
    with pytest.raises(ValueError, match="lr must be >= 0"):
        opt.add_param_group({"params": [nn.Parameter(torch.zeros(3))], "lr": -0.5})
    assert len(opt.param_groups) == 1  # the bad group was not added


@pytest.mark.parametrize("name", list(FACTORIES))
def test_sparse_gradients_are_rejected(name: str) -> None:
    emb = nn.Embedding(10, 3, sparse=True)
    opt = FACTORIES[name](emb.parameters())
    emb(torch.tensor([1, 2, 3])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradients"):
        opt.step()


# ---- the optimizer protocol -----------------------------------------------------------------


@pytest.mark.parametrize("name", list(FACTORIES))
def test_step_with_closure_returns_its_loss(name: str) -> None:
    net = make_net()
    opt = FACTORIES[name](net.parameters())
    x, y = batch(0)
    before = [p.detach().clone() for p in net.parameters()]
    computed: list[float] = []

    def closure() -> float:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()  # works: step() re-enables grad for the closure
        computed.append(float(loss.detach()))
        return computed[-1]

    loss = opt.step(closure)
    assert computed and loss == computed[-1]
    assert any(not torch.equal(b, p) for b, p in zip(before, net.parameters(), strict=True))
    assert opt.step() is None  # no closure, no loss


@pytest.mark.parametrize("name", list(FACTORIES))
def test_zero_grad_and_missing_grads(name: str) -> None:
    used, unused = nn.Parameter(torch.randn(3, 2)), nn.Parameter(torch.randn(3, 2))
    opt = FACTORIES[name]([used, unused])
    (used**2).sum().backward()
    frozen = unused.detach().clone()
    opt.step()
    assert torch.equal(unused, frozen)  # no grad: untouched, no state
    assert unused not in opt.state
    opt.zero_grad()
    assert used.grad is None


@pytest.mark.parametrize("name", ["adamp", "sgdp-momentum-wd"])
def test_param_groups_use_their_own_hyperparameters(name: str) -> None:
    a, b = nn.Parameter(torch.randn(4, 3)), nn.Parameter(torch.randn(4, 3))
    opt = FACTORIES[name]([{"params": [a]}, {"params": [b], "lr": 0.0, "weight_decay": 0.0}])
    b0 = b.detach().clone()
    a0 = a.detach().clone()
    ((a - 1) ** 2).sum().add(((b - 1) ** 2).sum()).backward()
    opt.step()
    assert torch.equal(b, b0)  # lr = 0 in its group
    assert not torch.equal(a, a0)


# ---- state dict -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FACTORIES))
def test_state_dict_round_trip_continues_bit_identically(name: str) -> None:
    """Save after 3 steps, load into a fresh optimizer on a copy of the model (through
    torch.save bytes, as a checkpoint would), train both 4 more steps: equal bit for bit."""
    torch.manual_seed(0)
    net = make_net()
    opt = FACTORIES[name](net.parameters())
    train_steps(net, opt, range(3))

    buffer = io.BytesIO()
    torch.save({"model": net.state_dict(), "opt": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)

    resumed_net = make_net()
    resumed_net.load_state_dict(saved["model"])
    resumed = FACTORIES[name](resumed_net.parameters())
    resumed.load_state_dict(saved["opt"])
    fresh_net = copy.deepcopy(resumed_net)
    fresh = FACTORIES[name](fresh_net.parameters())  # same weights, no optimizer state

    train_steps(net, opt, range(3, 7))
    train_steps(resumed_net, resumed, range(3, 7))
    train_steps(fresh_net, fresh, range(3, 7))
    for p, q in zip(net.parameters(), resumed_net.parameters(), strict=True):
        assert torch.equal(p, q)
    # The state matters: without it the run differs (so the equality above is not vacuous) ...
    stateful = name != "sgdp"  # plain SGDP without momentum keeps no state
    differs = any(
        not torch.equal(p, q) for p, q in zip(net.parameters(), fresh_net.parameters(), strict=True)
    )
    assert differs == stateful
    # ... and the loaded state is the saved one, step counters included.
    assert opt.state_dict()["state"].keys() == resumed.state_dict()["state"].keys()
    for k, s in opt.state_dict()["state"].items():
        r = resumed.state_dict()["state"][k]
        assert s.keys() == r.keys()
        for key in s:
            assert torch.equal(torch.as_tensor(s[key]), torch.as_tensor(r[key])), (k, key)
