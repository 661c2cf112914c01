"""The self-normalizing property (Klambauer et al., 2017) and the diagnose tool."""

import itertools

import pytest
import torch
from torch import nn

from archsmith.build import create_model
from archsmith.selfnorm import SNN, diagnose, lecun_normal_
from archsmith.tasks import get_task
from helpers import rel_err


def standardized_digits() -> torch.Tensor:
    x = get_task("digits-flat").train.x
    x = x[:, x.std(0) > 0]  # the constant border pixels have no variance to standardize
    return (x - x.mean(0)) / x.std(0)


@pytest.mark.parametrize("inputs", ["gaussian", "digits"])
def test_64_layer_snn_keeps_mean_0_var_1_at_init(inputs: str) -> None:
    torch.manual_seed(0)
    x = torch.randn(1024, 64) if inputs == "gaussian" else standardized_digits()
    model = SNN(x.shape[1], 10, width=512, depth=64)
    stats = diagnose(model, x)
    assert len(stats) == 64
    for s in stats:
        assert abs(s.mean) <= 0.1, s
        assert 0.8 <= s.var <= 1.25, s


def test_same_depth_with_relu_and_default_init_does_not() -> None:
    torch.manual_seed(0)
    x = torch.randn(1024, 64)
    dims = [64] + [512] * 64
    relu = nn.Sequential(
        *(m for a, b in itertools.pairwise(dims) for m in (nn.Linear(a, b), nn.ReLU()))
    )
    stats = diagnose(relu, x)
    assert len(stats) == 64
    outside = [s for s in stats if not (abs(s.mean) <= 0.1 and 0.8 <= s.var <= 1.25)]
    assert len(outside) >= 60  # the signal collapses layer after layer
    assert stats[-1].var < 1e-2  # collapsed to what the default bias init alone feeds in


def test_diagnose_matches_a_manual_forward() -> None:
    torch.manual_seed(1)
    model = SNN(5, 3, width=7, depth=3).double()
    x = torch.randn(11, 5, dtype=torch.float64)
    h, expected = x, []
    for layer in model.body:
        linear, act = layer[0], layer[1]
        h = act(h @ linear.weight.T + linear.bias)
        expected.append((h.mean().item(), h.var(unbiased=False).item()))
    stats = diagnose(model, x)
    assert [s.kind for s in stats] == ["SELU"] * 3
    for s, (mean, var) in zip(stats, expected, strict=True):
        assert s.mean == pytest.approx(mean, rel=1e-12, abs=1e-14)
        assert s.var == pytest.approx(var, rel=1e-12)
    leaves = diagnose(model, x, layers="leaves")
    assert [s.kind for s in leaves] == ["Flatten"] + ["Linear", "SELU"] * 3 + ["Linear"]
    assert model.training  # the mode is restored


def test_lecun_normal_init() -> None:
    torch.manual_seed(0)
    linear = lecun_normal_(nn.Linear(400, 300))
    assert torch.equal(linear.bias, torch.zeros(300))
    assert linear.weight.mean().abs() < 1e-3  # 120k draws of std 0.05: mean std ~1.4e-4
    assert linear.weight.var().item() == pytest.approx(1 / 400, rel=0.02)


def test_alpha_dropout_keeps_the_fixed_point_in_training() -> None:
    torch.manual_seed(0)
    x = torch.randn(2048, 64)
    model = SNN(64, 10, width=512, depth=16, dropout=0.1)
    for s in diagnose(model, x, train=True):
        assert abs(s.mean) <= 0.15 and 0.75 <= s.var <= 1.3, s


def test_registered_snn_models_build_for_their_tasks() -> None:
    model = create_model("snn", task="digits", width=32, depth=3)
    assert isinstance(model, SNN) and model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    cox = create_model("snn_cox", task="breast-cancer-survival").eval()  # no dropout
    assert cox.head.risk.bias is None and cox.head.classes is None
    x, _ = get_task("breast-cancer-survival").example_batch(4)
    out = cox(x)
    assert out.shape == (4, 1)
    ref = cox.encode(x) @ cox.head.risk.weight.T
    assert rel_err(out, ref) < 1e-6


def test_snn_cox_with_an_aux_label_has_a_joint_classification_head() -> None:
    task = get_task("breast-cancer-survival", aux_label="grade")
    cox = create_model("snn_cox", task=task).eval()
    x, y = task.example_batch(6)
    out = cox(x)
    assert out.shape == (6, 1 + len(task.aux_classes or ()))
    h = cox.encode(x)
    assert rel_err(out[:, :1], h @ cox.head.risk.weight.T) < 1e-6
    classes = cox.head.classes
    assert classes is not None
    assert rel_err(out[:, 1:], h @ classes.weight.T + classes.bias) < 1e-6
    # both heads receive gradient from the task's joint loss
    task.loss(cox(x), y).backward()
    assert cox.head.risk.weight.grad is not None and classes.weight.grad is not None
    assert classes.weight.grad.abs().sum() > 0 and cox.head.risk.weight.grad.abs().sum() > 0
