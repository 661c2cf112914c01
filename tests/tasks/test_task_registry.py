"""Registry: names, suggestions, option checking, caching; Task plumbing."""

from __future__ import annotations

import pytest
import torch
from sklearn.metrics import accuracy_score

import archsmith.tasks.registry as task_registry
from archsmith.errors import ArchsmithError
from archsmith.tasks import InputSpec, Split, Task, get_task, list_tasks, register_task


def test_list_tasks_is_sorted_and_complete() -> None:
    names = list_tasks()
    assert names == sorted(names)
    assert {"digits", "digits-flat", "breast-cancer-survival", "mqar", "selective-copy"} <= set(
        names
    )


def test_unknown_task_suggests_the_close_match() -> None:
    with pytest.raises(ArchsmithError, match=r"^unknown task 'digts' \(did you mean 'digits'"):
        get_task("digts")
    with pytest.raises(
        ArchsmithError, match=r"unknown task 'selective_copy' \(did you mean 'selective-copy'\?\)"
    ):
        get_task("selective_copy")


def test_unknown_and_invalid_options_are_named() -> None:
    with pytest.raises(
        ArchsmithError, match=r"^digits\.split_sed: unknown option \(did you mean 'split_seed'\?\)"
    ):
        get_task("digits", split_sed=1)
    with pytest.raises(ArchsmithError, match=r"^digits\.split_seed: expected an integer, got 'x'"):
        get_task("digits", split_seed="x")


def test_tasks_are_cached_per_name_and_options() -> None:
    a = get_task("mqar", num_examples=20, seq_len=32)
    assert get_task("mqar", seq_len=32, num_examples=20) is a  # option order does not matter
    assert get_task("mqar", num_examples=21, seq_len=32) is not a
    # a task remembers its options, so a spec can rebuild it by name + options
    assert a.options == {"num_examples": 20, "seq_len": 32}
    assert get_task(a.name, **a.options) is a
    assert get_task("digits").options == {}


def test_register_task_and_descriptions(monkeypatch: pytest.MonkeyPatch) -> None:
    # a private copy of the registry, so the toy task does not outlive this test
    monkeypatch.setattr(task_registry, "_TASKS", dict(task_registry._TASKS))

    def make(*, n: int = 12) -> Task:
        x = torch.arange(n, dtype=torch.float32).reshape(n, 1)
        y = torch.arange(n) % 2
        s = Split(x, y)
        return Task("test-toy", "classification", InputSpec("vector", (1,)), s, s, s, num_outputs=2)

    register_task("test-toy", "a toy for the registry test")(make)
    register_task("test-toy", "a toy for the registry test")(make)  # same factory: fine
    assert "test-toy" in list_tasks()
    task = get_task("test-toy", n=14)
    assert task.description == "a toy for the registry test" and len(task.train) == 14
    with pytest.raises(ValueError, match="already registered"):
        register_task("test-toy", "other")(lambda: task)


def test_classification_loss_and_accuracy_against_references() -> None:
    task = get_task("digits-flat")
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(len(task.val), 10, generator=g)
    logits[torch.arange(100), task.val.y[:100]] += 5.0  # most of the first 100 right
    expected = accuracy_score(task.val.y.numpy(), logits.argmax(1).numpy())
    assert abs(task.metrics(logits, task.val.y)["accuracy"] - expected) < 1e-12
    logp = torch.log_softmax(logits, 1)
    nll = -logp[torch.arange(len(task.val)), task.val.y].mean()
    assert torch.allclose(task.loss(logits, task.val.y), nll)
    with pytest.raises(ArchsmithError, match="classification output"):
        task.loss(logits[:, 0], task.val.y)


def test_input_spec_and_split_guard_programming_errors() -> None:
    with pytest.raises(ValueError):
        InputSpec("tokens", (8,))
    with pytest.raises(ValueError):
        Split(torch.zeros(3, 2), torch.zeros(4))
    assert len(Split(torch.zeros(3, 2), torch.zeros(3))) == 3
