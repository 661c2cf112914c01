"""npz:PATH user data: vectors and images, kinds, and every malformed-archive error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from archsmith.errors import ArchsmithError
from archsmith.tasks import get_task


def _save(tmp_path: Path, name: str = "d.npz", **arrays: Any) -> str:
    path = tmp_path / name
    with open(path, "wb") as fh:  # an open file keeps numpy from appending ".npz"
        np.savez(fh, **arrays)
    return str(path)


def test_vector_classification_with_arbitrary_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 3.0, size=(60, 4))
    y = np.array([3, 7, 9] * 20)
    task = get_task(f"npz:{_save(tmp_path, x=x, y=y)}")
    assert task.kind == "classification" and task.num_outputs == 3
    assert task.classes == (3, 7, 9)
    assert task.input.kind == "vector" and task.input.shape == (4,)
    assert task.train.x.dtype == torch.float32 and task.train.y.dtype == torch.int64
    assert sum(len(task.split(s)) for s in ("train", "val", "test")) == 60
    assert torch.allclose(task.train.x.mean(0), torch.zeros(4), atol=1e-5)
    # each sample keeps its own label: y equals the label of the raw row it came from
    raw = get_task(f"npz:{_save(tmp_path, 'raw.npz', x=x, y=y)}", standardize=False)
    for xi, yi in zip(raw.test.x.double().numpy(), raw.test.y.tolist(), strict=True):
        row = int(np.argmin(np.abs(x - xi).sum(1)))
        assert raw.classes is not None and raw.classes[yi] == y[row]


def test_image_regression_and_kind_override(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 2, 5, 6)).astype(np.float32) * np.array([1.0, 10.0]).reshape(
        1, 2, 1, 1
    )
    y = rng.normal(50.0, 10.0, size=40)
    task = get_task(f"npz:{_save(tmp_path, x=x, y=y)}")
    assert task.kind == "regression" and task.num_outputs == 1
    assert task.input.kind == "image" and task.input.shape == (2, 5, 6)
    assert torch.allclose(task.train.x.mean((0, 2, 3)), torch.zeros(2), atol=1e-5)  # per channel
    assert torch.allclose(task.train.x.std((0, 2, 3), unbiased=False), torch.ones(2), atol=1e-4)
    assert task.model_kwargs() == {"in_shape": (2, 5, 6), "num_outputs": 1}

    ints = get_task(f"npz:{_save(tmp_path, 'i.npz', x=x, y=np.arange(40) % 4)}", kind="regression")
    assert ints.kind == "regression" and ints.train.y.dtype == torch.float32
    floats = get_task(
        f"npz:{_save(tmp_path, 'f.npz', x=x, y=(np.arange(40) % 2) * 1.0)}", kind="classification"
    )
    assert floats.kind == "classification" and floats.classes == (0, 1)


def _good(n: int = 20) -> dict[str, np.ndarray]:
    return {"x": np.arange(n * 3, dtype=np.float64).reshape(n, 3), "y": np.arange(n) % 2}


def _with_nan(name: str, row: int, value: float) -> dict[str, np.ndarray]:
    arrays = _good()
    arrays[name] = arrays[name].astype(np.float64)
    arrays[name][row] = value
    return arrays


BAD_ARCHIVES = [
    ({"x": _good()["x"]}, r"'.*d\.npz' has no array 'y' \(arrays: x\)"),
    (
        {"X": _good()["x"], "y": _good()["y"]},
        r"has no array 'x' \(did you mean 'X'\?\) \(arrays: X, y\)",
    ),
    (
        {"x": _good()["x"], "y": np.arange(19) % 2},
        r"arrays 'x' and 'y' have different lengths: 20 and 19",
    ),
    (_with_nan("x", 5, np.nan), r"array 'x' has a non-finite value \(nan\) at row index 5"),
    (_with_nan("y", 7, np.inf), r"array 'y' has a non-finite value \(inf\) at row index 7"),
    (
        {"x": np.array([[1, "a"]] * 20, dtype=object), "y": _good()["y"]},
        r"array 'x' holds Python objects",
    ),
    (
        {"x": _good()["x"], "y": np.array(["a", "b"] * 10)},
        r"array 'y' has dtype <U1: expected integer",
    ),
    (
        {"x": np.array([["a"]] * 20), "y": _good()["y"]},
        r"array 'x' has dtype <U1: expected numbers",
    ),
    (
        {"x": np.zeros((20, 3, 4)), "y": _good()["y"]},
        r"array 'x' has shape \(20, 3, 4\): expected \[N, F\]",
    ),
    ({"x": _good()["x"], "y": np.zeros((20, 2))}, r"array 'y' has shape \(20, 2\): expected \[N\]"),
    (_good(9), r"has 9 rows: need at least 10"),
    ({"x": _good()["x"], "y": np.zeros(20, dtype=np.int64)}, r"array 'y' has a single class 0"),
]


@pytest.mark.parametrize(("arrays", "message"), BAD_ARCHIVES)
def test_malformed_npz_raises_one_clear_line(
    tmp_path: Path, arrays: dict[str, np.ndarray], message: str
) -> None:
    path = _save(tmp_path, "d.npz", **arrays)
    with pytest.raises(ArchsmithError, match=message) as info:
        get_task(f"npz:{path}")
    assert "\n" not in str(info.value)


def test_files_that_are_not_npz_archives(tmp_path: Path) -> None:
    with pytest.raises(
        ArchsmithError, match=r"cannot read '.*nope\.npz': No such file or directory"
    ):
        get_task(f"npz:{tmp_path / 'nope.npz'}")
    text = tmp_path / "text.npz"
    text.write_text("x,y\n1,2\n")
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    npy = tmp_path / "single.npz"
    with open(npy, "wb") as fh:
        np.save(fh, np.zeros(3))
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    for path in (text, empty, npy, broken):
        with pytest.raises(ArchsmithError, match=rf"'.*{path.name}' is not an npz file"):
            get_task(f"npz:{path}")


def test_pickled_payloads_are_never_loaded(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(ArchsmithError, match="is not an npz file"):
        get_task(f"npz:{path}")
