"""With the projection switched off, AdamP is torch's AdamW/Adam and SGDP is torch's SGD.

``delta=0`` switches the projection off exactly: the test is ``|cos| < 0``, never true. What
remains must match torch's optimizers where the semantics coincide:

- AdamP's weight decay is decoupled (``w *= 1 - lr * wd``, the authors' code), which is AdamW's,
  not Adam's L2-through-the-gradient: AdamP(delta=0) == AdamW for any ``weight_decay``, and ==
  Adam only for ``weight_decay=0``;
- SGDP's buffer starts at zero and takes ``(1 - dampening) g``, torch's SGD starts it at ``g``:
  equal for ``dampening=0``. SGDP's decay is decoupled and divided by ``1 - momentum``, which
  equals SGD's L2 term exactly (up to rounding) only when ``momentum=0``.

The network is a conv + BatchNorm stack whose conv weights *are* scale invariant, so the
default ``delta`` would project (checked last): ``delta=0`` is what makes them equal.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from archsmith.selfnorm.optim import SGDP, AdamP
from helpers import rel_err

Factory = Callable[[list[nn.Parameter]], torch.optim.Optimizer]


def make_net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1, bias=False),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 5, 3, bias=False),
        nn.BatchNorm2d(5),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(5 * 5 * 5, 4),
    ).double()


def trajectory(make_opt: Factory, steps: int = 8) -> list[torch.Tensor]:
    """Final parameters after ``steps`` full-batch steps on fixed random data."""
    net = make_net()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(16, 3, 7, 7, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (16,), generator=gen)
    opt = make_opt(list(net.parameters()))
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in net.parameters()]


def assert_same(a: list[torch.Tensor], b: list[torch.Tensor], tol: float) -> None:
    for i, (pa, pb) in enumerate(zip(a, b, strict=True)):
        assert rel_err(pa, pb) < tol, f"parameter {i}: rel_err {rel_err(pa, pb):.3g}"


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adamp_without_projection_is_adamw(weight_decay: float) -> None:
    kw = {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": weight_decay}
    ours = trajectory(lambda ps: AdamP(ps, delta=0.0, **kw))  # type: ignore[arg-type]
    theirs = trajectory(lambda ps: torch.optim.AdamW(ps, **kw))  # type: ignore[arg-type]
    assert_same(ours, theirs, 1e-12)


def test_adamp_without_projection_or_decay_is_adam() -> None:
    ours = trajectory(lambda ps: AdamP(ps, lr=0.01, delta=0.0))
    theirs = trajectory(lambda ps: torch.optim.Adam(ps, lr=0.01))
    assert_same(ours, theirs, 1e-12)


def test_adamp_decay_is_not_adams_l2() -> None:
    """The decoupled decay really differs from Adam's coupled one (why AdamW is the twin)."""
    ours = trajectory(lambda ps: AdamP(ps, lr=0.01, delta=0.0, weight_decay=0.1))
    theirs = trajectory(lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1))
    assert max(rel_err(a, b) for a, b in zip(ours, theirs, strict=True)) > 1e-6


@pytest.mark.parametrize(
    ("momentum", "nesterov"), [(0.0, False), (0.9, False), (0.9, True), (0.5, False)]
)
def test_sgdp_without_projection_is_sgd(momentum: float, nesterov: bool) -> None:
    kw = {"lr": 0.05, "momentum": momentum, "nesterov": nesterov}
    ours = trajectory(lambda ps: SGDP(ps, delta=0.0, **kw))  # type: ignore[arg-type]
    theirs = trajectory(lambda ps: torch.optim.SGD(ps, **kw))  # type: ignore[arg-type]
    assert_same(ours, theirs, 1e-12)


def test_sgdp_decay_without_momentum_is_sgd_l2() -> None:
    """``w (1 - lr wd) - lr g == w - lr (g + wd w)``: decoupled equals coupled without momentum."""
    ours = trajectory(lambda ps: SGDP(ps, lr=0.05, weight_decay=0.1, delta=0.0))
    theirs = trajectory(lambda ps: torch.optim.SGD(ps, lr=0.05, weight_decay=0.1))
    assert_same(ours, theirs, 1e-12)


CONV_WEIGHTS = ("0.weight", "3.weight")  # followed by BatchNorm: scale invariant


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda ps: AdamP(ps, lr=0.01), lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0)),
        (
            lambda ps: SGDP(ps, lr=0.05, momentum=0.9),
            lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9),
        ),
    ],
)
def test_default_delta_projects_on_this_network(ours: Factory, theirs: Factory) -> None:
    """Guard against vacuous equivalences: with the paper's delta the conv weights are projected,
    so the runs part ways (SGD's first step is the bare gradient, already tangent: take 3)."""
    a, b = trajectory(ours, steps=3), trajectory(theirs, steps=3)
    names = [name for name, _ in make_net().named_parameters()]
    for name, pa, pb in zip(names, a, b, strict=True):
        if name in CONV_WEIGHTS:
            assert rel_err(pa, pb) > 1e-6, name


def test_default_delta_leaves_other_parameters_alone() -> None:
    """On the first step only the conv weights are projected: the linear head (not followed by
    a normalization) fails the test, and 1-D tensors (BN gains and biases) are never tested."""
    a = trajectory(lambda ps: AdamP(ps, lr=0.01), steps=1)
    b = trajectory(lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0), steps=1)
    names = [name for name, _ in make_net().named_parameters()]
    for name, pa, pb in zip(names, a, b, strict=True):
        if name in CONV_WEIGHTS:
            assert rel_err(pa, pb) > 1e-6, name
        else:
            assert rel_err(pa, pb) < 1e-12, name
