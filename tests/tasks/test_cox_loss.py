"""Cox partial likelihood (Breslow ties) and the c-index."""

from __future__ import annotations

import math

import numpy as np
import torch
from lifelines.utils import concordance_index

from archsmith.tasks import cox_ph_loss
from archsmith.tasks.metrics import c_index


def _naive_breslow(risk: list[float], time: list[float], event: list[int]) -> float:
    """-log L / #events by the textbook double loop."""
    total, events = 0.0, 0
    for i in range(len(risk)):
        if event[i]:
            at_risk = sum(math.exp(risk[j]) for j in range(len(risk)) if time[j] >= time[i])
            total += risk[i] - math.log(at_risk)
            events += 1
    return -total / events


def test_cox_loss_matches_hand_computation_with_ties_and_censoring() -> None:
    # Deliberately unsorted; t=2 is a tie of two events, t=3 is censored.
    time = [2.0, 4.0, 1.0, 3.0, 2.0]
    event = [1, 1, 1, 0, 1]
    risk = [-0.3, -0.1, 0.1, 0.2, 0.5]
    e = math.exp
    # event at t=1: everyone at risk; the two events at t=2 share the risk set {t >= 2};
    # the event at t=4: only itself. The censored subject only enters risk sets.
    everyone = e(-0.3) + e(-0.1) + e(0.1) + e(0.2) + e(0.5)
    from_t2 = e(-0.3) + e(-0.1) + e(0.2) + e(0.5)
    log_lik = (
        (0.1 - math.log(everyone))
        + (-0.3 - math.log(from_t2))
        + (0.5 - math.log(from_t2))
        + (-0.1 - math.log(e(-0.1)))
    )
    expected = -log_lik / 4
    got = cox_ph_loss(
        torch.tensor(risk, dtype=torch.float64),
        torch.tensor(time, dtype=torch.float64),
        torch.tensor(event, dtype=torch.float64),
    )
    assert abs(float(got) - expected) < 1e-12


def test_cox_loss_matches_naive_loop_on_random_data_with_many_ties() -> None:
    g = torch.Generator().manual_seed(1)
    for n in (1, 7, 64):
        risk = torch.randn(n, 1, generator=g, dtype=torch.float64) * 2
        time = torch.randint(0, 5, (n,), generator=g).double()  # heavy ties
        event = (torch.rand(n, generator=g) < 0.6).double()
        event[0] = 1.0
        got = float(cox_ph_loss(risk, time, event))
        ref = _naive_breslow(risk.flatten().tolist(), time.tolist(), event.int().tolist())
        assert abs(got - ref) < 1e-10 * max(1.0, abs(ref))


def test_cox_loss_gradient_passes_gradcheck() -> None:
    g = torch.Generator().manual_seed(2)
    risk = torch.randn(9, generator=g, dtype=torch.float64, requires_grad=True)
    time = torch.tensor([3.0, 1.0, 2.0, 2.0, 5.0, 1.0, 4.0, 2.0, 6.0], dtype=torch.float64)
    event = torch.tensor([1, 0, 1, 1, 0, 1, 1, 0, 1], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda r: cox_ph_loss(r, time, event), (risk,))


def test_cox_loss_without_events_is_zero_and_differentiable() -> None:
    risk = torch.randn(6, requires_grad=True)
    loss = cox_ph_loss(risk, torch.arange(6.0), torch.zeros(6))
    assert loss.requires_grad and float(loss.detach()) == 0.0
    loss.backward()
    assert risk.grad is not None and torch.equal(risk.grad, torch.zeros(6))


def test_c_index_equals_lifelines_on_random_data() -> None:
    rng = np.random.default_rng(0)
    n = 300
    time = rng.exponential(10.0, size=n)
    event = (rng.random(n) < 0.7).astype(np.float64)
    risk = rng.normal(size=n) - 0.05 * time  # informative but noisy
    target = torch.tensor(np.stack([time, event], axis=1), dtype=torch.float32)
    got = c_index(torch.tensor(risk).unsqueeze(1), target)
    # lifelines ranks predicted survival times: higher risk means shorter survival.
    expected = concordance_index(target[:, 0].numpy(), -risk, event)
    assert abs(got - expected) < 1e-9
    assert 0.5 < got < 1.0


def test_c_index_is_nan_without_events() -> None:
    target = torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    assert math.isnan(c_index(torch.tensor([0.1, 0.2, 0.3]), target))
