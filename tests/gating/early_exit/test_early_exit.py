"""Early exit: ECE against hand-computed and loop references, the exit distribution, the
early-exit forward against an all-exits reference, FLOP records against archsmith.cost, and
the training objectives against formulas written out here."""

from __future__ import annotations

import math
from typing import cast

import pytest
import torch
import torch.nn.functional as F

from archsmith.build import create_model
from archsmith.cost import measure
from archsmith.errors import ArchsmithError
from archsmith.gating.early_exit import (
    EarlyExitNetwork,
    JointGate,
    exit_distribution,
    expected_calibration_error,
    uncertainty_features,
)
from archsmith.layers.aux_loss import training_loss
from archsmith.registry import get_model_entry
from archsmith.tasks import get_task
from archsmith.train import TrainConfig, fit


def naive_ece(probs: torch.Tensor, labels: torch.Tensor, n_bins: int) -> float:
    """ECE from the definition, bin by bin with Python loops."""
    total = 0.0
    n = len(labels)
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = []
        for i in range(n):
            conf = float(probs[i].max())
            if (lo < conf <= hi) or (b == 0 and conf == 0.0):
                members.append(i)
        if members:
            acc = sum(int(probs[i].argmax()) == int(labels[i]) for i in members) / len(members)
            conf_mean = sum(float(probs[i].max()) for i in members) / len(members)
            total += len(members) / n * abs(acc - conf_mean)
    return total


def test_ece_hand_computed() -> None:
    probs = torch.tensor(
        [[0.9, 0.05, 0.05], [0.85, 0.1, 0.05], [0.2, 0.7, 0.1], [0.38, 0.35, 0.27]],
        dtype=torch.float64,
    )
    labels = torch.tensor([0, 1, 1, 2])
    # bins of width 0.2: (0.8, 1] holds 0.9 (right) and 0.85 (wrong): 2/4 * |0.5 - 0.875|;
    # (0.6, 0.8] holds 0.7 (right): 1/4 * 0.3; (0.2, 0.4] holds 0.38 (wrong): 1/4 * 0.38
    expected = 0.5 * 0.375 + 0.25 * 0.3 + 0.25 * 0.38
    assert expected_calibration_error(probs, labels, n_bins=5) == pytest.approx(expected)


def test_ece_bin_edges_and_perfect_calibration() -> None:
    # confidence exactly 0.5 goes to (0, 0.5], exactly 1.0 to (0.5, 1]
    probs = torch.tensor([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 0])
    assert expected_calibration_error(probs, labels, n_bins=2) == pytest.approx(0.0)
    assert expected_calibration_error(probs, torch.tensor([1, 1, 1]), n_bins=2) == pytest.approx(
        (2 * 0.5 + 1.0) / 3
    )


def test_ece_matches_loop_reference_on_random_data() -> None:
    gen = torch.Generator().manual_seed(3)
    probs = torch.softmax(3 * torch.randn(200, 5, generator=gen, dtype=torch.float64), -1)
    labels = torch.randint(0, 5, (200,), generator=gen)
    for n_bins in (1, 7, 15):
        assert expected_calibration_error(probs, labels, n_bins) == pytest.approx(
            naive_ece(probs, labels, n_bins), abs=1e-12
        )


def test_ece_rejects_bad_input() -> None:
    with pytest.raises(ArchsmithError, match="n_bins"):
        expected_calibration_error(torch.ones(2, 2) / 2, torch.zeros(2, dtype=torch.long), 0)
    with pytest.raises(ArchsmithError, match="ECE"):
        expected_calibration_error(torch.ones(2, 2) / 2, torch.zeros(3, dtype=torch.long))


def test_exit_distribution_hand_computed() -> None:
    g = torch.tensor([[0.5, 0.2], [0.0, 0.0], [1.0, 0.3]])
    pi = exit_distribution(g)
    expected = torch.tensor([[0.5, 0.1, 0.4], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert torch.allclose(pi, expected)
    assert torch.allclose(exit_distribution(torch.rand(7, 4)).sum(-1), torch.ones(7))


def test_uncertainty_features_hand_computed() -> None:
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]], dtype=torch.float64))
    conf, gap, neg_log_h = uncertainty_features(logits)[0].tolist()
    assert conf == pytest.approx(math.log(0.7 / 0.3))
    assert gap == pytest.approx(math.log(0.7 / 0.2))
    h = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)) / math.log(3)
    assert neg_log_h == pytest.approx(-math.log(h))


def _gates(model: EarlyExitNetwork) -> list[JointGate]:
    return [cast(JointGate, g) for g in model.gates]


def _tiny(gate: str, **kwargs: object) -> EarlyExitNetwork:
    torch.manual_seed(0)
    model = create_model("early_exit_mlp", task="digits-flat", width=16, depth=3, gate=gate)
    assert isinstance(model, EarlyExitNetwork)
    for key, value in kwargs.items():
        setattr(model, key, value)
    return model


def _reference_exits(model: EarlyExitNetwork, x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Run every exit on every sample, then pick each sample's first accepted exit by a loop."""
    logits, h = [], x
    for block, head in zip(model.blocks, model.heads, strict=True):
        h = block(h)
        logits.append(head(h))
    out, exits = [], []
    for n in range(x.shape[0]):
        for i, z in enumerate(logits):
            if i == model.num_exits - 1:
                accept = True
            elif model.gate_kind == "joint":
                feats = uncertainty_features(z[n : n + 1])
                g = torch.sigmoid(
                    feats @ _gates(model)[i].linear.weight.T + _gates(model)[i].linear.bias
                )
                accept = bool(g >= model.threshold)
            else:
                accept = float(z[n].softmax(-1).max()) >= model.threshold
            if accept:
                out.append(z[n])
                exits.append(i)
                break
    return torch.stack(out), exits


@pytest.mark.parametrize("gate", ["joint", "confidence"])
def test_early_exit_forward_matches_all_exits_reference(gate: str) -> None:
    model = _tiny(gate).eval()
    with torch.no_grad():  # spread the gates so exits differ across samples
        for g in _gates(model):
            g.linear.weight.normal_(std=1.0)
    x, _ = get_task("digits-flat").example_batch(40)
    for threshold in (0.0, 0.2, 0.5, 0.6, 0.8, 1.01):
        model.threshold = threshold
        with torch.no_grad():
            out = model(x)
            ref, exits = _reference_exits(model, x)
        assert torch.allclose(out, ref, atol=1e-6)
        assert model.last_exit is not None and model.last_exit.tolist() == exits
        if threshold == 0.0:
            assert set(exits) == {0}
        if threshold > 1:
            assert set(exits) == {model.num_exits - 1}


@pytest.mark.parametrize("name", ["early_exit_mlp", "early_exit_cnn"])
@pytest.mark.parametrize("gate", ["joint", "confidence"])
def test_recorded_flops_match_archsmith_cost(name: str, gate: str) -> None:
    task = get_task(get_model_entry(name).default_task)
    torch.manual_seed(0)
    model = create_model(name, task=task, gate=gate)
    assert isinstance(model, EarlyExitNetwork)
    model.eval()
    x, _ = task.example_batch(32)
    with torch.no_grad():  # a threshold at the median first-exit score: exits are mixed
        z = model.heads[0](model.blocks[0](x))
        score = model.gates[0](z) if gate == "joint" else z.softmax(-1).amax(-1)
        model.threshold = float(score.median())
        model(x)
    assert model.last_exit is not None and model.last_flops is not None
    assert len(set(model.last_exit.tolist())) > 1
    counted = measure(model, x, timing=False).forward_flops
    assert float(model.last_flops.sum()) == counted
    model.threshold = 2.0  # nobody exits early: the whole network, per sample
    assert float(model.exit_flops[-1]) * 4 == measure(model, x[:4], timing=False).forward_flops


def test_confidence_objective_is_mean_exit_loss() -> None:
    model = _tiny("confidence").train()
    task = get_task("digits-flat")
    x, y = task.example_batch(12)
    loss = model.training_loss(x, y, task.loss)
    h, losses = x, []
    for block, head in zip(model.blocks, model.heads, strict=True):
        h = block(h)
        losses.append(F.cross_entropy(head(h), y))
    assert float(loss.detach()) == pytest.approx(
        float(torch.stack(losses).sum().detach() / 3), rel=1e-6
    )
    assert float(training_loss(model, x, y, task.loss).detach()) == pytest.approx(
        float(loss.detach()), rel=1e-6
    )


def _written_out_joint_loss(
    model: EarlyExitNetwork, x: torch.Tensor, y: torch.Tensor, kind: str
) -> torch.Tensor:
    """The joint objective sample by sample, from the formulas in the module docstring."""
    h, z = x, []
    for block, head in zip(model.blocks, model.heads, strict=True):
        h = block(h)
        z.append(head(h))
    big_l = model.num_exits
    costs = (model.exit_flops / model.exit_flops[-1]).tolist()
    total = x.new_zeros(())
    gate_terms: list[tuple[float, int, torch.Tensor]] = []
    for n in range(x.shape[0]):
        ce = [F.cross_entropy(z[i][n : n + 1], y[n : n + 1]) for i in range(big_l)]
        g = [torch.sigmoid(_gates(model)[i].logit(z[i][n : n + 1]))[0] for i in range(big_l - 1)]
        pi, reach = [], torch.tensor(1.0)
        for i in range(big_l):
            stop = g[i] if i < big_l - 1 else torch.tensor(1.0)
            pi.append(reach * stop)
            reach = reach * (1 - stop)
        for i in range(big_l):
            w = (1 - model.im_mix) * float(pi[i].detach()) + model.im_mix / big_l
            total = total + w * ce[i] / x.shape[0]
        priced = [float(ce[i].detach()) + model.cost_weight * costs[i] for i in range(big_l)]
        if kind == "expected":
            total = total + sum(pi[i] * priced[i] for i in range(big_l)) / x.shape[0]
        else:
            best = min(range(big_l), key=lambda i: priced[i])
            for i in range(big_l - 1):
                gate_terms.append((1.0 if i >= best else 0.0, i, g[i]))
    if kind == "oracle":
        pos = sum(t for t, _, _ in gate_terms)
        neg = len(gate_terms) - pos
        for t, _, g_val in gate_terms:
            bce = -(t * torch.log(g_val) + (1 - t) * torch.log(1 - g_val))
            total = total + bce * (0.5 / pos if t else 0.5 / neg)
    return total


@pytest.mark.parametrize("kind", ["oracle", "expected"])
def test_joint_objective_matches_written_out_formula(kind: str) -> None:
    model = _tiny("joint", gate_loss=kind, cost_weight=0.3).train().double()
    with torch.no_grad():
        for g in _gates(model):
            g.linear.weight.normal_(std=0.5)
    task = get_task("digits-flat")
    x, y = task.example_batch(10)
    x = x.double()
    loss = model.training_loss(x, y, task.loss)
    ref = _written_out_joint_loss(model, x, y, kind)
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-9)
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    ref_grads = torch.autograd.grad(ref, params, allow_unused=True)
    for a, b in zip(grads, ref_grads, strict=True):
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert torch.allclose(a, b, rtol=1e-7, atol=1e-10)
    assert all(any(p is g.linear.weight for p in params) for g in _gates(model))


def test_train_forward_is_the_exit_mixture() -> None:
    model = _tiny("joint").train()
    x, _ = get_task("digits-flat").example_batch(6)
    out = model(x)
    logits, _, pi = model._all_exits(x)
    mix = torch.stack([pi[:, i : i + 1] * z.softmax(-1) for i, z in enumerate(logits)]).sum(0)
    assert torch.allclose(out.exp(), mix, atol=1e-6)


def test_fit_uses_the_joint_objective_and_records_exits() -> None:
    task = get_task("digits-flat")
    model = _tiny("joint")
    result = fit(model, task, TrainConfig(epochs=3, batch_size=32), progress=False)
    assert result.test["accuracy"] > 0.3
    assert model.last_exit is not None and model.last_flops is not None
    assert float(model.last_flops.max()) <= float(model.exit_flops[-1])


def test_bad_options_raise() -> None:
    with pytest.raises(ArchsmithError, match="gate"):
        create_model("early_exit_mlp", gate="sometimes")
    with pytest.raises(ArchsmithError, match="cost_weight"):
        create_model("early_exit_mlp", cost_weight=-1.0)
    with pytest.raises(ArchsmithError, match="heads"):
        EarlyExitNetwork([torch.nn.Identity()], [], (3,))
