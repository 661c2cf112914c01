"""``mps(init="kernel")``: the kernel ridge solution of the feature map, compressed into the MPS."""

from __future__ import annotations

import itertools

import pytest
import torch

from archsmith.build import create_model
from archsmith.errors import ArchsmithError
from archsmith.tasks import get_task
from archsmith.tensornet.classifiers.kernel_init import fit_kernel_ridge, kernel_ridge_alpha
from archsmith.tensornet.classifiers.mps import MPSClassifier
from archsmith.train import TrainConfig, fit
from tensornet.classifiers.reference import feature, product_state

SITES, CLASSES, SAMPLES, RIDGE = 6, 3, 24, 1e-2


def _data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(SAMPLES, SITES, generator=gen, dtype=torch.float64), torch.arange(SAMPLES) % 3


def _explicit_ridge_logits(x: torch.Tensor, y: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
    """Reference: ridge regression on the explicit 2^N-dimensional product states (the
    primal weight ``W = Phi^T alpha``), evaluated on ``queries``."""
    states = product_state(feature(x)).reshape(SAMPLES, -1)  # [n, 2^N]
    targets = torch.nn.functional.one_hot(y, CLASSES).double()
    alpha = torch.linalg.solve(
        states @ states.T + RIDGE * torch.eye(SAMPLES, dtype=torch.float64), targets
    )
    weight = states.T @ alpha  # [2^N, C]
    return product_state(feature(queries)).reshape(len(queries), -1) @ weight


@pytest.mark.parametrize("label_site", [0, 2, SITES - 1])
def test_exact_bond_dimension_reproduces_the_ridge_solution(label_site: int) -> None:
    x, y = _data(0)
    # 16 >= every exact bond rank (at most 2^2 x 3 next to an end label)
    model = MPSClassifier(SITES, CLASSES, chi=16, label_site=label_site, feature_norm="l2").double()
    fit_kernel_ridge(model, x, y, ridge=RIDGE)
    queries = torch.rand(10, SITES, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got, want = model(queries), _explicit_ridge_logits(x, y, queries)
    # the label site carries one positive temperature; everything else is exact
    scale = (got * want).sum() / (want * want).sum()
    assert scale > 0
    assert torch.allclose(got, scale * want, rtol=1e-8, atol=1e-10)


def test_truncated_sites_are_isometries_and_error_falls_with_chi() -> None:
    x, y = _data(2)
    queries = torch.rand(30, SITES, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    want = _explicit_ridge_logits(x, y, queries)
    errors = []
    for chi in (1, 2, 4, 8):
        model = MPSClassifier(SITES, CLASSES, chi=chi, label_site=3, feature_norm="l2").double()
        fit_kernel_ridge(model, x, y, ridge=RIDGE)
        got = model(queries)
        scale = (got * want).sum() / (want * want).sum()
        errors.append(((got / scale - want).norm() / want.norm()).item())
        left = model.cores[1].detach()  # [chi, d, chi]: left-orthonormal
        gram = torch.einsum("asb,asc->bc", left, left)
        live = gram.diagonal() > 0.5  # bonds the data fills (the rest stay zero)
        assert torch.allclose(
            gram[live][:, live], torch.eye(int(live.sum()), dtype=torch.float64), atol=1e-10
        )
        right = model.cores[4].detach()  # right-orthonormal
        gram = torch.einsum("asb,csb->ac", right, right)
        live = gram.diagonal() > 0.5
        assert torch.allclose(
            gram[live][:, live], torch.eye(int(live.sum()), dtype=torch.float64), atol=1e-10
        )
    assert errors[-1] < 1e-8
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(errors))
    assert errors[0] > 1e-3  # rank one really truncates


def test_trainer_runs_the_kernel_init_on_digits() -> None:
    task = get_task("digits")
    model = create_model("mps", task=task, chi=4, init="kernel", feature_scale=0.6)
    assert isinstance(model, MPSClassifier) and model.feature_norm == "l2"
    before = [c.detach().clone() for c in model.cores]
    model.on_fit_start(task)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.cores, strict=True))
    identity = create_model("mps", task=task, chi=4)
    assert isinstance(identity, MPSClassifier) and identity.feature_norm == "l1"
    before = [c.detach().clone() for c in identity.cores]
    identity.on_fit_start(task)  # the identity initialisation is left alone
    assert all(torch.equal(a, b) for a, b in zip(before, identity.cores, strict=True))


def test_bad_options_are_one_clear_error() -> None:
    with pytest.raises(ArchsmithError, match="init must be"):
        MPSClassifier(4, 2, init="svd")  # type: ignore[arg-type]
    x, y = _data(0)
    with pytest.raises(ArchsmithError, match="ridge must be > 0"):
        fit_kernel_ridge(MPSClassifier(SITES, CLASSES, chi=2), x, y, ridge=0.0)
    with pytest.raises(ArchsmithError, match="needs an MPSClassifier"):
        fit_kernel_ridge(torch.nn.Linear(2, 2), x, y)


def test_leave_one_out_outputs_match_refitting_without_the_sample() -> None:
    x, y = _data(4)
    phi = feature(x)
    _, held_out = kernel_ridge_alpha(phi, y, CLASSES, RIDGE)
    for i in (0, 7, 23):
        keep = torch.arange(SAMPLES) != i
        alpha_i, _ = kernel_ridge_alpha(phi[keep], y[keep], CLASSES, RIDGE)
        kernel_row = (phi[i][None] * phi[keep]).sum(-1).prod(-1)  # [n - 1]
        assert torch.allclose(held_out[i], kernel_row @ alpha_i, rtol=1e-8, atol=1e-10)


def test_temperature_stays_finite_when_the_fit_separates_the_training_set() -> None:
    x, y = _data(0)
    model = MPSClassifier(SITES, CLASSES, chi=16, label_site=2, feature_norm="l2").double()
    fit_kernel_ridge(model, x, y, ridge=RIDGE)
    train_logits = model(x)
    assert train_logits.argmax(1).eq(y).all()  # the exact fit separates every sample ...
    # ... so a temperature fitted on these outputs would run to its bound (1e4); the
    # leave-one-out outputs keep it moderate
    assert train_logits.abs().max() < 1e3


def test_bonds_the_data_cannot_fill_stay_zero() -> None:
    x, y = _data(0)
    model = MPSClassifier(SITES, CLASSES, chi=16, label_site=3, feature_norm="l2").double()
    fit_kernel_ridge(model, x[:5], y[:5], ridge=RIDGE)  # 5 samples: rank <= 5 at every cut
    for core in list(model.cores)[1:3]:
        live = core.detach().flatten(0, -2).norm(dim=0) > 0
        assert int(live.sum()) <= 5


def test_class_default_feature_norm_follows_init() -> None:
    assert MPSClassifier(4, 2, init="kernel").feature_norm == "l2"
    assert MPSClassifier(4, 2).feature_norm == "l1"
    assert MPSClassifier(4, 2, init="kernel", feature_norm="l1").feature_norm == "l1"


def test_fit_runs_the_kernel_start() -> None:
    task = get_task("digits")
    model = create_model("mps", task=task, chi=8, init="kernel", feature_scale=0.6)
    reference = create_model("mps", task=task, chi=8, init="kernel", feature_scale=0.6)
    fit_kernel_ridge(reference, task.train.x, task.train.y)
    fit(model, task, TrainConfig(epochs=1, batch_size=256, lr=1e-12), progress=False)
    # a vanishing step size: the trained sites are the kernel start
    for got, want in zip(model.cores, reference.cores, strict=True):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_samples": 0}, "max_samples"),
        ({"y": torch.zeros(3, dtype=torch.long)}, "inputs for"),
        ({"y": torch.full((SAMPLES,), CLASSES)}, "labels must lie"),
    ],
)
def test_bad_data_is_one_clear_error(kwargs: dict[str, object], match: str) -> None:
    x, y = _data(0)
    args: dict[str, object] = {"x": x, "y": y, **kwargs}
    with pytest.raises(ArchsmithError, match=match):
        fit_kernel_ridge(MPSClassifier(SITES, CLASSES, chi=2), **args)  # type: ignore[arg-type]
