"""breast-cancer-survival against scikit-survival's raw data."""

from __future__ import annotations

import numpy as np
import torch
from sksurv.datasets import load_breast_cancer

from archsmith.tasks import get_task


def test_breast_cancer_survival_task() -> None:
    frame, outcome = load_breast_cancer()
    task = get_task("breast-cancer-survival")
    assert task.kind == "survival" and task.num_outputs == 1
    assert task.metric_names == ("c_index",) and task.greater_is_better
    n_numeric = sum(frame[c].dtype.kind == "f" for c in frame.columns)
    n_onehot = sum(
        len(frame[c].cat.categories) for c in frame.columns if frame[c].dtype == "category"
    )
    assert task.input.shape == (n_numeric + n_onehot,)
    sizes = [len(task.split(s)) for s in ("train", "val", "test")]
    assert sum(sizes) == len(frame) == 198

    ys = torch.cat([task.split(s).y for s in ("train", "val", "test")])
    assert ys.dtype == torch.float32 and ys.shape == (198, 2)
    assert sorted(ys[:, 0].tolist()) == sorted(np.asarray(outcome["t.tdm"], np.float32).tolist())
    assert int(ys[:, 1].sum()) == int(outcome["e.tdm"].sum())
    rate = outcome["e.tdm"].mean()
    for s in ("train", "val", "test"):  # stratified on the event indicator
        y = task.split(s).y
        assert abs(float(y[:, 1].sum()) - rate * len(y)) < 1.0 + 1e-9

    names = task.feature_names
    assert names is not None
    x = task.train.x
    numeric = torch.tensor(["=" not in n for n in names])
    assert torch.allclose(x[:, numeric].mean(0), torch.zeros(int(numeric.sum())), atol=1e-4)
    assert torch.allclose(
        x[:, numeric].std(0, unbiased=False), torch.ones(int(numeric.sum())), atol=1e-3
    )
    onehot = x[:, ~numeric]
    assert set(onehot.unique().tolist()) <= {0.0, 1.0}
    grade = torch.tensor([n.startswith("grade=") for n in names])
    assert torch.equal(x[:, grade].sum(1), torch.ones(len(x)))


def test_survival_loss_and_metrics_on_the_task() -> None:
    task = get_task("breast-cancer-survival")
    risk = torch.randn(len(task.val), 1, requires_grad=True)
    loss = task.loss(risk, task.val.y)
    loss.backward()
    assert loss.ndim == 0 and risk.grad is not None
    m = task.metrics(risk, task.val.y)
    assert set(m) == {"c_index"} and 0.0 <= m["c_index"] <= 1.0
    # risk = -time ranks every comparable pair correctly
    perfect = task.metrics(-task.val.y[:, :1], task.val.y)["c_index"]
    assert perfect == 1.0
