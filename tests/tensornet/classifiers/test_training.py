"""Training sanity on a small slice of digits: gradient descent (the ordinary trainer), DMRG
sweeps (dmrg_fit and the trainer with train_mode="dmrg") and the tree network all learn."""

from __future__ import annotations

import json

import pytest
import torch

from archsmith.build import create_model
from archsmith.cli import main
from archsmith.errors import ArchsmithError
from archsmith.tasks import get_task
from archsmith.tasks.base import Split, Task
from archsmith.tensornet.classifiers import MPSClassifier, TTNClassifier, dmrg_fit, fit_isometries
from archsmith.train import TrainConfig, fit


@pytest.fixture(scope="module")
def small_digits() -> Task:
    full = get_task("digits")

    def part(split: Split, n: int) -> Split:
        return Split(split.x[:n], split.y[:n])

    return Task(
        "digits-small", "classification", full.input,
        part(full.train, 192), part(full.val, 90), part(full.test, 90), num_outputs=10,
    )  # fmt: skip


def _mps(task: Task, **options: object) -> MPSClassifier:
    model = create_model("mps", task=task, **options)
    assert isinstance(model, MPSClassifier)
    return model


def _fit(name: str, task: Task, epochs: int, **options: object) -> list[float]:
    torch.manual_seed(0)
    model = create_model(name, task=task, **options)
    config = TrainConfig(epochs=epochs, batch_size=32, lr=1e-2, patience=None)
    result = fit(model, task, config, progress=False)
    return [row["train_loss"] for row in result.history] + [result.val["accuracy"]]


def test_mps_gradient_descent_learns(small_digits: Task) -> None:
    *losses, acc = _fit("mps", small_digits, 6, chi=6)
    assert losses[-1] < 0.5 * losses[0] and acc > 0.5  # chance is 0.1


def test_ttn_learns_from_isometries(small_digits: Task) -> None:
    torch.manual_seed(0)
    model = create_model("ttn", task=small_digits, chi=4)
    assert isinstance(model, TTNClassifier)
    fit_isometries(model, small_digits.train.x)
    # Adam moves every entry of all 63 nodes at once: a large lr scrambles the tree
    config = TrainConfig(epochs=8, batch_size=32, lr=3e-3, patience=None)
    result = fit(model, small_digits, config, progress=False)
    losses = [row["train_loss"] for row in result.history]
    # the tree starts slowly: on this slice only a clear decrease of the loss is expected
    assert losses[-1] < 0.95 * losses[0]


def test_mps_trainer_in_dmrg_mode_updates_by_sweeps(small_digits: Task) -> None:
    torch.manual_seed(0)
    model = _mps(small_digits, chi=4, train_mode="dmrg")
    before = [c.detach().clone() for c in model.cores]
    x, y = small_digits.train.x, small_digits.train.y
    with torch.no_grad():
        loss0 = float(small_digits.loss(model(x), y))
    config = TrainConfig(epochs=1, batch_size=96, lr=3e-3, patience=None)
    fit(model, small_digits, config, progress=False)
    with torch.no_grad():
        loss1 = float(small_digits.loss(model(x), y))
    assert loss1 < 0.7 * loss0
    assert all(not torch.equal(a, b) for a, b in zip(before, model.cores, strict=True))


def test_dmrg_fit_learns_and_keeps_best(small_digits: Task) -> None:
    torch.manual_seed(0)
    model = _mps(small_digits, chi=4)
    result = dmrg_fit(model, small_digits, sweeps=2, chi=4)
    assert len(result.history) == 2 and result.best_sweep in (1, 2)
    best = max(row["val_accuracy"] for row in result.history)
    assert result.val["accuracy"] == pytest.approx(best) and best > 0.5
    with pytest.raises(ArchsmithError, match="sweeps"):
        dmrg_fit(model, small_digits, sweeps=0)


def test_mps_options_are_checked() -> None:
    task = get_task("digits")
    with pytest.raises(ArchsmithError, match="label_site"):
        create_model("mps", task=task, label_site=64)
    model = _mps(task, chi=3, label_site=0)
    assert model.cores[0].shape == (1, 2, 10, 3) and model.cores[-1].shape == (3, 2, 1)


@pytest.mark.slow
def test_cli_trains_mps(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code = main(
        ["train", "--task", "digits", "--model", "mps", "--opt", "chi=4", "--epochs", "3",
         "--out", str(out), "--no-progress"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.3
