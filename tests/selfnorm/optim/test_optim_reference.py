"""AdamP and SGDP against naive float64 references written from the paper's algorithms.

The references below use plain Python floats and explicit loops (no torch), straight from
Heo et al., ICLR 2021, Algorithm 1 (SGDP) and Algorithm 2 (AdamP), with the weight-decay and
bias-correction conventions of the authors' code. Weights are small matrices (rows = output
channels). Each loss has a closed-form gradient here; the torch side differentiates the same
loss with autograd, so the two sides share nothing but the formulas.

Losses:
- ``channel``: ``sum_i c_i . w_i / ||w_i||``: every row scale invariant (a linear layer followed
  by per-channel normalization), so ``grad`` is orthogonal to each row: projection fires
  channel-wise;
- ``layer``: ``c . w / ||w||_F``: only the whole tensor is invariant: the channel test fails
  and the layer test fires;
- ``plain``: ``0.5 ||w - target||^2``: not invariant: projection never fires;
- ``bias``: the ``channel`` loss on a 1-D tensor: invariant, but 1-D tensors are never tested.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import pytest
import torch

from archsmith.selfnorm.optim import SGDP, AdamP
from helpers import rel_err

Mat = list[list[float]]  # rows = output channels; a 1-D tensor is a single row

W0: Mat = [[0.8, -0.3, 0.5], [0.2, 0.9, -0.4]]  # [2, 3]
C: Mat = [[0.3, 1.1, -0.7], [-0.9, 0.4, 0.6]]
# Rows nearly along +w_0 and -w_1: each row's gradient keeps a large radial part, so the
# channel test keeps failing along the whole trajectory while the layer test passes.
C_LAYER: Mat = [[0.9, -0.1, 0.6], [-0.1, -1.0, 0.2]]
TARGET: Mat = [[-0.5, 0.7, 0.1], [0.6, -0.2, 0.3]]
B0: Mat = [[0.6, -0.2, 0.9, 0.1]]  # a bias: [4]
CB: Mat = [[0.5, 0.8, -0.3, 0.2]]


# ---- plain-Python linear algebra ------------------------------------------------------------


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def norm(a: list[float]) -> float:
    return math.sqrt(dot(a, a))


def flat(m: Mat) -> list[float]:
    return [x for row in m for x in row]


def unflat(v: list[float], like: Mat) -> Mat:
    k = len(like[0])
    return [v[i * k : (i + 1) * k] for i in range(len(like))]


def tangent(c: list[float], w: list[float]) -> list[float]:
    """Gradient of ``c . w / ||w||`` in ``w``: ``(c - (c . w_hat) w_hat) / ||w||``."""
    n = norm(w)
    u = [x / n for x in w]
    cu = dot(c, u)
    return [(ci - cu * ui) / n for ci, ui in zip(c, u, strict=True)]


def grad_channel(w: Mat, c: Mat) -> Mat:
    return [tangent(ci, wi) for ci, wi in zip(c, w, strict=True)]


def grad_layer(w: Mat, c: Mat) -> Mat:
    return unflat(tangent(flat(c), flat(w)), w)


def grad_plain(w: Mat, target: Mat) -> Mat:
    return [[x - y for x, y in zip(wr, tr, strict=True)] for wr, tr in zip(w, target, strict=True)]


# ---- the paper's projection -----------------------------------------------------------------


def naive_projection(
    w: Mat, g: Mat, u: Mat, delta: float, wd_ratio: float, eps: float, is_1d: bool
) -> tuple[Mat, float, str | None]:
    """Return (projected update, weight-decay factor, view used or None)."""
    if is_1d:
        return u, 1.0, None
    for name in ("channel", "layer"):
        if name == "channel":
            ws, gs, us = w, g, u
        else:
            ws, gs, us = [flat(w)], [flat(g)], [flat(u)]
        dim = len(ws[0])
        cos = max(
            abs(dot(gr, wr)) / (max(norm(gr), eps) * max(norm(wr), eps))
            for gr, wr in zip(gs, ws, strict=True)
        )
        if cos < delta / math.sqrt(dim):
            out = []
            for wr, ur in zip(ws, us, strict=True):
                w_hat = [x / (norm(wr) + eps) for x in wr]
                along = dot(w_hat, ur)
                out.append([ui - along * wi for ui, wi in zip(ur, w_hat, strict=True)])
            if name == "layer":
                out = unflat(out[0], w)
            return out, wd_ratio, name
    return u, 1.0, None


# ---- the two optimizers, step by step -------------------------------------------------------


def naive_adamp(
    w0: Mat,
    grad_fn: Callable[[Mat], Mat],
    steps: int,
    *,
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    delta: float = 0.1,
    wd_ratio: float = 0.1,
    nesterov: bool = False,
    is_1d: bool = False,
) -> tuple[list[Mat], list[str | None]]:
    """AdamP, Algorithm 2; returns the weights after each step and the view projected on."""
    b1, b2 = betas
    w = copy.deepcopy(w0)
    m = [[0.0] * len(r) for r in w]
    v = [[0.0] * len(r) for r in w]
    history, views = [], []
    for t in range(1, steps + 1):
        g = grad_fn(w)
        u = [[0.0] * len(r) for r in w]
        for i in range(len(w)):
            for j in range(len(w[i])):
                m[i][j] = b1 * m[i][j] + (1 - b1) * g[i][j]
                v[i][j] = b2 * v[i][j] + (1 - b2) * g[i][j] ** 2
                denom = math.sqrt(v[i][j]) / math.sqrt(1 - b2**t) + eps
                num = b1 * m[i][j] + (1 - b1) * g[i][j] if nesterov else m[i][j]
                u[i][j] = num / denom
        q, ratio, view = naive_projection(w, g, u, delta, wd_ratio, eps, is_1d)
        step_size = lr / (1 - b1**t)
        w = [
            [
                w[i][j] * (1 - lr * weight_decay * ratio) - step_size * q[i][j]
                for j in range(len(w[i]))
            ]
            for i in range(len(w))
        ]
        history.append(copy.deepcopy(w))
        views.append(view)
    return history, views


def naive_sgdp(
    w0: Mat,
    grad_fn: Callable[[Mat], Mat],
    steps: int,
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    eps: float = 1e-8,
    delta: float = 0.1,
    wd_ratio: float = 0.1,
    is_1d: bool = False,
) -> tuple[list[Mat], list[str | None]]:
    """SGDP, Algorithm 1: the buffer accumulates raw gradients, the applied update is projected."""
    w = copy.deepcopy(w0)
    buf = [[0.0] * len(r) for r in w]
    history, views = [], []
    for _ in range(steps):
        g = grad_fn(w)
        u = [[0.0] * len(r) for r in w]
        for i in range(len(w)):
            for j in range(len(w[i])):
                buf[i][j] = momentum * buf[i][j] + (1 - dampening) * g[i][j]
                u[i][j] = g[i][j] + momentum * buf[i][j] if nesterov else buf[i][j]
        q, ratio, view = naive_projection(w, g, u, delta, wd_ratio, eps, is_1d)
        decay = 1 - lr * weight_decay * ratio / (1 - momentum)
        w = [[w[i][j] * decay - lr * q[i][j] for j in range(len(w[i]))] for i in range(len(w))]
        history.append(copy.deepcopy(w))
        views.append(view)
    return history, views


# ---- the cases, on both sides ---------------------------------------------------------------

CASES: dict[str, tuple[Mat, Callable[[Mat], Mat], str | None]] = {
    # name: (initial weight, closed-form gradient, view the projection must use)
    "channel": (W0, lambda w: grad_channel(w, C), "channel"),
    "layer": (W0, lambda w: grad_layer(w, C_LAYER), "layer"),
    "plain": (W0, lambda w: grad_plain(w, TARGET), None),
    "bias": (B0, lambda w: grad_channel(w, CB), None),
}


def torch_loss(case: str, p: torch.Tensor) -> torch.Tensor:
    t = torch.float64
    if case == "channel":
        return (torch.tensor(C, dtype=t) * p / p.norm(dim=1, keepdim=True)).sum()
    if case == "layer":
        return (torch.tensor(C_LAYER, dtype=t) * p / p.norm()).sum()
    if case == "plain":
        return 0.5 * ((p - torch.tensor(TARGET, dtype=t)) ** 2).sum()
    return (torch.tensor(CB[0], dtype=t) * p / p.norm()).sum()  # bias: [4]


def run_torch(
    case: str, make_opt: Callable[[list[torch.Tensor]], torch.optim.Optimizer], steps: int
):
    w0 = CASES[case][0]
    init = torch.tensor(w0[0] if case == "bias" else w0, dtype=torch.float64)
    p = torch.nn.Parameter(init)
    opt = make_opt([p])
    history = []
    for _ in range(steps):
        opt.zero_grad()
        torch_loss(case, p).backward()
        opt.step()
        history.append(p.detach().clone())
    return history


def as_tensor(m: Mat, case: str) -> torch.Tensor:
    return torch.tensor(m[0] if case == "bias" else m, dtype=torch.float64)


STEPS = 6


@pytest.mark.parametrize("case", list(CASES))
def test_closed_form_gradients_match_autograd(case: str) -> None:
    """The reference's hand-written gradients are those of the torch losses."""
    w0, grad_fn, _ = CASES[case]
    p = torch.nn.Parameter(as_tensor(w0, case))
    torch_loss(case, p).backward()
    assert p.grad is not None
    assert rel_err(p.grad, as_tensor(grad_fn(w0), case)) < 1e-14


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("weight_decay", [0.0, 0.2])
@pytest.mark.parametrize("nesterov", [False, True])
def test_adamp_matches_reference(case: str, weight_decay: float, nesterov: bool) -> None:
    w0, grad_fn, expected_view = CASES[case]
    kw = {"lr": 0.05, "weight_decay": weight_decay, "nesterov": nesterov}
    ref, views = naive_adamp(w0, grad_fn, STEPS, is_1d=(case == "bias"), **kw)  # type: ignore[arg-type]
    # The case is what it claims: the projection fired (or not) as intended at every step.
    assert views == [expected_view] * STEPS
    got = run_torch(case, lambda ps: AdamP(ps, **kw), STEPS)  # type: ignore[arg-type]
    for step, (g, r) in enumerate(zip(got, ref, strict=True)):
        assert rel_err(g, as_tensor(r, case)) < 1e-12, f"step {step + 1}"


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize(
    ("momentum", "dampening", "nesterov"),
    [(0.0, 0.0, False), (0.9, 0.0, False), (0.9, 0.0, True), (0.5, 0.3, False)],
)
@pytest.mark.parametrize("weight_decay", [0.0, 0.2])
def test_sgdp_matches_reference(
    case: str, momentum: float, dampening: float, nesterov: bool, weight_decay: float
) -> None:
    w0, grad_fn, expected_view = CASES[case]
    kw = {
        "lr": 0.1,
        "momentum": momentum,
        "dampening": dampening,
        "nesterov": nesterov,
        "weight_decay": weight_decay,
    }
    ref, views = naive_sgdp(w0, grad_fn, STEPS, is_1d=(case == "bias"), **kw)  # type: ignore[arg-type]
    assert views == [expected_view] * STEPS
    got = run_torch(case, lambda ps: SGDP(ps, **kw), STEPS)  # type: ignore[arg-type]
    for step, (g, r) in enumerate(zip(got, ref, strict=True)):
        assert rel_err(g, as_tensor(r, case)) < 1e-12, f"step {step + 1}"


def test_reference_projection_changes_the_result() -> None:
    """Guard against a vacuous reference: with the projection off the trajectory differs."""
    w0, grad_fn, _ = CASES["channel"]
    on, _ = naive_adamp(w0, grad_fn, STEPS, lr=0.05)
    off, views = naive_adamp(w0, grad_fn, STEPS, lr=0.05, delta=0.0)
    assert views == [None] * STEPS
    assert rel_err(as_tensor(on[-1], "channel"), as_tensor(off[-1], "channel")) > 1e-4


def _radial_cosines(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """Per-row |cos(update, weight)| of one step: [rows]."""
    step = after - before
    return (step * before).sum(1).abs() / (step.norm(dim=1) * before.norm(dim=1))


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("adamp", lambda ps, delta: AdamP(ps, lr=0.05, delta=delta)),
        ("sgdp", lambda ps, delta: SGDP(ps, lr=0.1, momentum=0.9, delta=delta)),
    ],
)
def test_projected_update_has_no_radial_component(name: str, make) -> None:
    """When projection fires, every row's step is orthogonal to that row of the weight.

    The same run with ``delta=0`` (plain Adam / SGD with momentum) shows the radial component
    that was removed: it is what makes the weight norm grow.
    """
    for delta, orthogonal in ((0.1, True), (0.0, False)):
        p = torch.nn.Parameter(as_tensor(W0, "channel"))
        opt = make([p], delta)
        radial = []
        for _ in range(STEPS):
            before = p.detach().clone()
            opt.zero_grad()
            torch_loss("channel", p).backward()
            opt.step()
            radial.append(_radial_cosines(before, p.detach()))
        # SGD's first step is the bare gradient, already orthogonal: look from step 2 on.
        worst = torch.stack(radial[1:]).max()
        if orthogonal:
            assert worst < 1e-6, f"{name}: radial part left, |cos| = {worst:.3g}"
        else:
            assert worst > 1e-3, f"{name}: no radial part to remove, |cos| = {worst:.3g}"
