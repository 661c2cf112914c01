"""Checkpoints in safetensors: model weights, and the full training state for ``--resume``.

Files are written atomically (temporary name, then rename), so an interruption leaves either
the previous checkpoint or the new one, never a torn file. Loading uses safetensors only:
no pickle, so a checkpoint from an untrusted source cannot run code.

The training state is one file (``resume.safetensors``): model and optimizer tensors under
``model.*`` and ``optim.*``, the RNG state under ``rng.torch``, and the JSON-able rest
(epoch, step, early-stopping state, optimizer hyper-parameters) in the file's metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from archsmith.errors import ArchsmithError
from archsmith.io import atomic_write

__all__ = [
    "load_model",
    "load_training_extras",
    "load_training_state",
    "save_model",
    "save_training_state",
]

_STATE_KEY = "archsmith_state"


def _detached(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors that share storage (tied weights, views): store copies.
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def save_model(path: str | os.PathLike[str], model: nn.Module) -> Path:
    """Write ``model.state_dict()`` to ``path`` as safetensors, atomically."""
    tensors = _detached(model.state_dict())
    return atomic_write(path, lambda tmp: save_file(tensors, tmp))


def _read(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise ArchsmithError(f"checkpoint {str(path)!r} does not exist") from None
    except (SafetensorError, OSError, ValueError) as err:
        raise ArchsmithError(
            f"checkpoint {str(path)!r} is not a readable safetensors file: {err}"
        ) from None


def load_model(path: str | os.PathLike[str], model: nn.Module) -> nn.Module:
    """Load weights saved by :func:`save_model` into ``model`` (shapes must match exactly)."""
    tensors = _read(path)
    _load_state(model, tensors, str(path))
    return model


def _load_state(model: nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise ArchsmithError(f"checkpoint {where!r} does not match the model: {detail}")
    for key, value in tensors.items():
        if value.shape != expected[key].shape:
            raise ArchsmithError(
                f"checkpoint {where!r} does not match the model: {key} has shape "
                f"{list(value.shape)}, the model {list(expected[key].shape)}"
            )
    model.load_state_dict(tensors)


def save_training_state(
    path: str | os.PathLike[str],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    extra: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write everything needed to continue training to one safetensors file, atomically.

    Args:
        state: JSON-able trainer state (epoch, step, early-stopping counters, ...).
        extra: more named tensors the trainer keeps (e.g. a running weight average); read
            back with :func:`load_training_extras`.
    """
    tensors = {f"model.{k}": v for k, v in _detached(model.state_dict()).items()}
    tensors.update(
        {f"extra.{k}": v.detach().clone().contiguous() for k, v in (extra or {}).items()}
    )
    opt = optimizer.state_dict()
    opt_meta: dict[str, Any] = {"param_groups": opt["param_groups"], "scalars": {}}
    for pid, pstate in opt["state"].items():
        for name, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{name}"] = value.detach().clone().contiguous()
            else:
                opt_meta["scalars"][f"{pid}.{name}"] = value
    tensors["rng.torch"] = torch.get_rng_state()
    metadata = {_STATE_KEY: json.dumps({"trainer": state, "optimizer": opt_meta})}
    return atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def load_training_state(
    path: str | os.PathLike[str], model: nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Restore model, optimizer and RNG from :func:`save_training_state`; return the trainer state."""
    from safetensors import safe_open

    tensors = _read(path)
    with safe_open(str(path), framework="pt") as fh:
        raw = (fh.metadata() or {}).get(_STATE_KEY)
    if raw is None:
        raise ArchsmithError(f"checkpoint {str(path)!r} holds no training state")
    meta = json.loads(raw)
    _load_state(
        model,
        {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")},
        str(path),
    )
    opt_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            opt_state.setdefault(int(pid), {})[name] = value
    for key, value in meta["optimizer"]["scalars"].items():
        pid, name = key.split(".", 1)
        opt_state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict(
        {"state": opt_state, "param_groups": meta["optimizer"]["param_groups"]}
    )
    torch.set_rng_state(tensors["rng.torch"])
    return dict(meta["trainer"])


def load_training_extras(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The ``extra`` tensors :func:`save_training_state` wrote (empty when there were none)."""
    return {k[len("extra.") :]: v for k, v in _read(path).items() if k.startswith("extra.")}
