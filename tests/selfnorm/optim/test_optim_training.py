"""A short training run: the paper's claim on a conv + BatchNorm network.

Every conv weight here is followed by BatchNorm, hence scale invariant. Momentum (SGD) and
Adam inflate the norms of such weights, which shrinks their effective step size; AdamP/SGDP
remove the radial part of each update, so the norms grow only at second order
(``||w + d||^2 = ||w||^2 + ||d||^2`` for ``d`` orthogonal to ``w``). After 20 steps on random
data the loss must go down and the conv weights' norm growth must be well below the baseline's
(about 7x below in this setting; asserted at 2x).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
import torch
from torch import nn

from archsmith.selfnorm.optim import SGDP, AdamP

STEPS = 20


def make_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


def train(
    make_opt: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer],
) -> tuple[float, float, list[float]]:
    """Return (first loss, last loss, relative norm growth of each conv weight)."""
    torch.manual_seed(0)
    net = make_net()
    gen = torch.Generator().manual_seed(100)
    x = torch.randn(32, 3, 8, 8, generator=gen)
    y = torch.randint(0, 4, (32,), generator=gen)
    convs = [m.weight for m in net if isinstance(m, nn.Conv2d)]  # both followed by BatchNorm
    norms0 = [float(w.detach().norm()) for w in convs]
    opt = make_opt(net.parameters())
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    growth = [float(w.detach().norm()) / n0 - 1.0 for w, n0 in zip(convs, norms0, strict=True)]
    return losses[0], losses[-1], growth


@pytest.mark.parametrize(
    ("ours", "baseline"),
    [
        (lambda ps: AdamP(ps, lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
        (
            lambda ps: SGDP(ps, lr=0.1, momentum=0.9),
            lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
        ),
    ],
    ids=["adamp-vs-adam", "sgdp-vs-sgd"],
)
def test_training_decreases_loss_and_slows_norm_growth(ours, baseline) -> None:
    first, last, growth = train(ours)
    _, _, base_growth = train(baseline)
    assert last < 0.95 * first, f"loss {first:.4f} -> {last:.4f}"
    for i, (g, b) in enumerate(zip(growth, base_growth, strict=True)):
        # The baseline really inflates the norms (else the comparison says nothing) ...
        assert b > 0.03, f"conv {i}: baseline growth only {b:.3f}"
        # ... and the projected optimizer inflates them far less.
        assert g < 0.5 * b, f"conv {i}: growth {g:.4f} vs baseline {b:.4f}"
