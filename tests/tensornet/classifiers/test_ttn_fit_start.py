"""``ttn(init="isometries")``: the trainer's ``on_fit_start`` fits the tree to the inputs."""

from __future__ import annotations

import copy

import pytest
import torch

from archsmith.build import create_model
from archsmith.errors import ArchsmithError
from archsmith.tasks import get_task
from archsmith.tensornet.classifiers.ttn import TTNClassifier, fit_isometries
from archsmith.train import TrainConfig, fit


def test_isometries_init_runs_fit_isometries_on_the_training_inputs() -> None:
    task = get_task("digits")
    torch.manual_seed(0)
    model = create_model("ttn", task=task, chi=4, init="isometries")
    assert isinstance(model, TTNClassifier)
    reference = copy.deepcopy(model)
    fit_isometries(reference, task.train.x)
    model.on_fit_start(task)
    for got, want in zip(model.nodes, reference.nodes, strict=True):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)
    # an inner node is an isometry (orthonormal columns), which the random init is not
    first = (
        model.nodes[0]
        .detach()
        .reshape(-1, model.nodes[0].shape[-2] * model.nodes[0].shape[-3], model.nodes[0].shape[-1])
    )
    gram = first.transpose(1, 2) @ first
    assert torch.allclose(gram, torch.eye(gram.shape[-1]).expand_as(gram), atol=1e-4)


def test_random_init_is_left_alone_by_fit_start() -> None:
    task = get_task("digits")
    torch.manual_seed(0)
    model = create_model("ttn", task=task, chi=4)
    before = [n.detach().clone() for n in model.nodes]
    model.on_fit_start(task)
    assert all(torch.equal(a, b) for a, b in zip(before, model.nodes, strict=True))


def test_fit_calls_the_isometries_init() -> None:
    task = get_task("digits")
    torch.manual_seed(0)
    model = create_model("ttn", task=task, chi=4, init="isometries")
    calls: list[int] = []
    original = model.on_fit_start

    def spy(t: object) -> None:
        calls.append(1)
        original(t)  # type: ignore[arg-type]

    model.on_fit_start = spy  # type: ignore[method-assign]
    fit(model, task, TrainConfig(epochs=1, batch_size=256, lr=1e-2), progress=False)
    assert calls == [1]


def test_bad_init_is_one_clear_error() -> None:
    with pytest.raises(ArchsmithError, match="init must be"):
        TTNClassifier(8, 8, 10, init="pca")  # type: ignore[arg-type]
