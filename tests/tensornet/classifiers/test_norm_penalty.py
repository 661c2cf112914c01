"""The ridge penalty ``||W||^2 / d^N`` of the MPS (option ``norm_penalty``) against the
explicit full weight tensor: value, gradient, and its place in the training loss."""

from __future__ import annotations

import pytest
import torch

from archsmith.build import create_model
from archsmith.errors import ArchsmithError
from archsmith.tasks import get_task
from archsmith.tensornet.classifiers import MPSClassifier
from archsmith.tensornet.classifiers._chain import mean_square_weight
from helpers import rel_err
from tensornet.classifiers.reference import mps_full_tensor


def _random_cores(n: int, chi: int, dim: int, label_site: int, seed: int) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    model = MPSClassifier(n, 3, chi, label_site=label_site, local_dim=dim).double()
    return [torch.randn_like(c).requires_grad_() for c in model.cores]


@pytest.mark.parametrize(
    ("n", "chi", "dim", "label_site"), [(4, 3, 2, 2), (5, 2, 3, 0), (5, 3, 2, 4)]
)
def test_mean_square_weight_matches_full_tensor(
    n: int, chi: int, dim: int, label_site: int
) -> None:
    cores = _random_cores(n, chi, dim, label_site, seed=n + chi + dim)
    value = mean_square_weight(cores, label_site)
    w = mps_full_tensor(cores, label_site)
    ref = w.pow(2).sum() / dim**n
    assert rel_err(value, ref) < 1e-12
    grads = torch.autograd.grad(value, cores)
    ref_grads = torch.autograd.grad(ref, cores)
    for a, b in zip(grads, ref_grads, strict=True):
        assert rel_err(a, b) < 1e-11


def test_mean_square_weight_of_long_chain_beyond_float32_range() -> None:
    # chi = 1, 80 sites, label on site 40; every entry of site j is a_j, so site j contributes
    # sum_s a_j^2 / d = a_j^2. With a = 10 on sites 0..39 and 0.1 on 41..79 the partial products
    # reach 1e80 (inf in float32) and the total is 10^80 * 10^-78 * (sum_{s,l} 1 / 2 = 2) = 200.
    model = MPSClassifier(80, 2, chi=1, init_std=0.0)
    with torch.no_grad():
        for j, core in enumerate(model.cores):
            core.fill_(1.0 if j == 40 else 10.0 if j < 40 else 0.1)
    assert rel_err(model.mean_square_weight(), torch.tensor(200.0)) < 1e-4


def test_training_loss_adds_the_penalty() -> None:
    torch.manual_seed(0)
    model = MPSClassifier(6, 3, 2, init_std=0.3, norm_penalty=0.25).double()
    x, y = torch.rand(4, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 1])
    ce = torch.nn.functional.cross_entropy
    w = mps_full_tensor(list(model.cores), model.label_site)
    expected = ce(model(x), y) + 0.25 * w.pow(2).sum() / 2**6
    assert rel_err(model.training_loss(x, y, ce), expected) < 1e-12
    model.norm_penalty = 0.0
    assert rel_err(model.training_loss(x, y, ce), ce(model(x), y)) < 1e-12


def test_norm_penalty_option_is_validated() -> None:
    task = get_task("digits")
    model = create_model("mps", task=task, chi=2, norm_penalty=0.01)
    assert isinstance(model, MPSClassifier) and model.norm_penalty == 0.01
    with pytest.raises(ArchsmithError, match="norm_penalty"):
        create_model("mps", task=task, chi=2, norm_penalty=-1.0)
