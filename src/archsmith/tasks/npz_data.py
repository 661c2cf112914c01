"""``npz:PATH``: a user's NumPy archive as a classification or regression task.

The archive (``numpy.savez(path, x=..., y=...)``) holds ``x`` ``[N, F]`` (vector inputs) or
``[N, C, H, W]`` (image inputs) and ``y`` ``[N]``: integer (or boolean) ``y`` is a
classification target, floating-point ``y`` a regression target, unless ``kind=`` says
otherwise. It is loaded with ``allow_pickle=False``: an archive can never run code, and object
arrays are refused. Row indices in error messages are 0-based, as in NumPy.
"""

from __future__ import annotations

import zipfile
from typing import Literal

import numpy as np

from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.tasks.base import Task
from archsmith.tasks.registry import register_user_loader
from archsmith.tasks.supervised import MIN_ROWS, supervised_task

__all__ = ["load_npz_task", "read_npz_arrays"]


def read_npz_arrays(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from the archive at ``path``, checked for presence and dtype; never unpickles."""
    shown = repr(path)
    not_npz = f"{shown} is not an npz file (save one with numpy.savez(path, x=..., y=...))"
    try:
        archive = np.load(path, allow_pickle=False)
    except OSError as err:
        raise ArchsmithError(f"cannot read {shown}: {err.strerror or err}") from None
    except (ValueError, EOFError, zipfile.BadZipFile):  # pickled, empty or broken bytes
        raise ArchsmithError(not_npz) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a bare .npy array
        raise ArchsmithError(not_npz)
    with archive:
        names = list(archive.files)
        arrays = []
        for name in ("x", "y"):
            if name not in names:
                same_case = [n for n in names if n.lower() == name]
                hint = (
                    f" (did you mean {same_case[0]!r}?)" if same_case else did_you_mean(name, names)
                )
                raise ArchsmithError(
                    f"{shown} has no array {name!r}{hint} (arrays: {', '.join(names) or 'none'})"
                )
            try:
                arrays.append(archive[name])
            except ValueError:  # numpy refuses object arrays without pickle
                raise ArchsmithError(
                    f"{shown} array {name!r} holds Python objects (dtype object), which are not "
                    "loaded without pickle: save it as a numeric array"
                ) from None
            except (OSError, EOFError, zipfile.BadZipFile) as err:
                raise ArchsmithError(f"cannot read array {name!r} of {shown}: {err}") from None
    x, y = arrays
    if x.dtype.kind not in "biuf":
        raise ArchsmithError(f"{shown} array 'x' has dtype {x.dtype}: expected numbers")
    if y.dtype.kind not in "biuf":
        raise ArchsmithError(
            f"{shown} array 'y' has dtype {y.dtype}: expected integer class labels or "
            "float regression targets"
        )
    return x, y


def _check_shapes(shown: str, x: np.ndarray, y: np.ndarray) -> None:
    if y.ndim != 1:
        raise ArchsmithError(f"{shown} array 'y' has shape {y.shape}: expected [N]")
    if x.ndim not in (2, 4):
        raise ArchsmithError(
            f"{shown} array 'x' has shape {x.shape}: expected [N, F] (vectors) or "
            "[N, C, H, W] (images)"
        )
    if x.shape[0] != y.shape[0]:
        raise ArchsmithError(
            f"{shown} arrays 'x' and 'y' have different lengths: {x.shape[0]} and {y.shape[0]}"
        )
    if 0 in x.shape[1:]:
        raise ArchsmithError(f"{shown} array 'x' has shape {x.shape}: no features")
    if y.shape[0] < MIN_ROWS:
        raise ArchsmithError(
            f"{shown} has {y.shape[0]} rows: need at least {MIN_ROWS} to split into train/val/test"
        )


def _check_finite(shown: str, name: str, a: np.ndarray) -> None:
    """Raise naming the first row (0-based) of ``a`` ``[N, ...]`` with a NaN or infinity."""
    if a.dtype.kind != "f":
        return
    flat = a.reshape(a.shape[0], -1)  # [N, prod(rest)]
    finite = np.isfinite(flat)
    rows_ok = finite.all(axis=1)  # [N]
    if not rows_ok.all():
        row = int(np.argmin(rows_ok))
        value = flat[row][~finite[row]][0]
        raise ArchsmithError(
            f"{shown} array {name!r} has a non-finite value ({value}) at row index {row}"
        )


@register_user_loader("npz", "a NumPy .npz archive with arrays x [N, ...] and y [N]")
def load_npz_task(
    path: str,
    *,
    kind: Literal["classification", "regression"] | None = None,
    split_seed: int = 0,
    standardize: bool = True,
) -> Task:
    """The task ``npz:PATH``.

    Args:
        path: the ``.npz`` archive.
        kind: ``"classification"`` or ``"regression"``; by default integer/boolean ``y`` is
            classification and floating-point ``y`` regression.
        split_seed: seed of the 70/15/15 split (stratified for classification).
        standardize: standardize ``x`` with train statistics (per feature for vectors, per
            channel for images).
    """
    shown = repr(path)
    x, y = read_npz_arrays(path)
    _check_shapes(shown, x, y)
    _check_finite(shown, "x", x)
    _check_finite(shown, "y", y)
    if kind is None:
        kind = "regression" if y.dtype.kind == "f" else "classification"
    return supervised_task(
        f"npz:{path}",
        x.astype(np.float64),
        y,
        kind=kind,
        input_kind="vector" if x.ndim == 2 else "image",
        split_seed=split_seed,
        standardize=standardize,
        target_name=f"{shown} array 'y'",
    )
