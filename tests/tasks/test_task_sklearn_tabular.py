import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine

from archsmith.tasks import get_task
from archsmith.tasks.splits import split_indices


@pytest.mark.parametrize(
    ("name", "loader", "classes"), [("wdbc", load_breast_cancer, 2), ("wine", load_wine, 3)]
)
def test_tabular_task_is_the_sklearn_set_standardized_on_train(
    name: str, loader, classes: int
) -> None:
    task = get_task(name)
    data = loader()
    assert task.num_outputs == classes and task.input.shape == (data.data.shape[1],)
    train_idx, val_idx, test_idx = split_indices(len(data.target), stratify=data.target, seed=0)
    mean, std = data.data[train_idx].mean(0), data.data[train_idx].std(0)
    for split, idx in ((task.train, train_idx), (task.val, val_idx), (task.test, test_idx)):
        assert np.array_equal(split.y.numpy(), data.target[idx])
        expected = (data.data[idx] - mean) / std  # z-scored with the TRAIN statistics only
        assert np.allclose(split.x.double().numpy(), expected, atol=1e-5)
    assert sorted(np.concatenate([train_idx, val_idx, test_idx]).tolist()) == list(
        range(len(data.target))
    )
