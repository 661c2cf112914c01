"""Saving and loading compressed models: safetensors weights plus a JSON manifest, no pickle.

A compressed model's directory holds

- ``compress.json`` — the manifest: what was compressed (``source``), the layer class and, per
  replaced layer, its shape, bias, rank and constructor options (mode split);
- ``model.safetensors`` — the full state dict of the compressed model;
- the files that rebuild the dense skeleton: ``spec.json`` for an archsmith model; the BERT
  ``config.json`` and the tokenizer files for a sentence encoder;
- ``report.json`` — the compression report (written by the pipeline).

:func:`load_compressed` rebuilds the dense skeleton from those files, puts an untrained layer of
the saved format and rank in place of each listed layer, and then loads the weights (names and
shapes must match exactly).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from archsmith.checkpoint import load_model, save_model
from archsmith.errors import ArchsmithError
from archsmith.io import atomic_write_json, read_json
from archsmith.tensornet.compress.archsmith_model import rebuild_task_model
from archsmith.tensornet.compress.formats import LayerFormat, Variant, variant_from_json
from archsmith.tensornet.compress.minilm import rebuild_sentence_encoder
from archsmith.tensornet.compress.surgery import set_submodule

__all__ = ["MANIFEST_FILE", "WEIGHTS_FILE", "load_compressed", "save_compressed"]

MANIFEST_FILE, WEIGHTS_FILE = "compress.json", "model.safetensors"
MANIFEST_VERSION = 1


def save_compressed(
    out_dir: Path,
    model: nn.Module,
    *,
    source: Mapping[str, Any],
    fmt: LayerFormat,
    layers: Mapping[str, nn.Linear],
    ranks: Mapping[str, int],
    variants: Mapping[str, Variant] | None = None,
) -> None:
    """Write ``model``'s weights and the manifest into ``out_dir`` (skeleton files: the caller).

    Args:
        layers: the dense layers that were replaced (for their shapes), by dotted name.
        ranks: the rank each of them was factored at.
        variants: each layer's constructor options beyond the rank (its mode split).
    """
    manifest = {
        "archsmith_compress": MANIFEST_VERSION,
        "source": dict(source),
        "method": fmt.method,
        "format": {"class": fmt.class_name},
        "layers": {
            name: {
                "in_features": layer.in_features,
                "out_features": layer.out_features,
                "bias": layer.bias is not None,
                "rank": int(ranks[name]),
                "options": dict((variants or {}).get(name, ())),
            }
            for name, layer in layers.items()
        },
        "weights": WEIGHTS_FILE,
    }
    save_model(out_dir / WEIGHTS_FILE, model)
    atomic_write_json(out_dir / MANIFEST_FILE, manifest)


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_FILE
    manifest = read_json(
        path, missing=f"{str(directory)!r} is not a compressed model (no {MANIFEST_FILE})"
    )
    if not isinstance(manifest, dict) or manifest.get("archsmith_compress") != MANIFEST_VERSION:
        raise ArchsmithError(
            f"{str(path)!r}: not an archsmith compression manifest (version {MANIFEST_VERSION})"
        )
    return manifest


def _skeleton(directory: Path, source: dict[str, Any]) -> nn.Module:
    kind = source.get("kind")
    if kind == "sentence_encoder":
        return rebuild_sentence_encoder(directory, source)
    if kind == "task_model":
        return rebuild_task_model(directory, source)
    raise ArchsmithError(f"{str(directory / MANIFEST_FILE)!r}: unknown source kind {kind!r}")


def load_compressed(directory: str | Path) -> nn.Module:
    """The compressed model saved in ``directory`` (eval mode)."""
    directory = Path(directory)
    manifest = _read_manifest(directory)
    try:
        fmt = LayerFormat(
            method=str(manifest["method"]),
            class_name=str(manifest["format"]["class"]),
            description="",
        )
        model = _skeleton(directory, dict(manifest["source"]))
        for name, entry in manifest["layers"].items():
            layer = fmt.build(
                int(entry["in_features"]),
                int(entry["out_features"]),
                bool(entry["bias"]),
                int(entry["rank"]),
                variant_from_json(entry.get("options", {})),
            )
            set_submodule(model, name, layer)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        if isinstance(err, ArchsmithError):
            raise
        raise ArchsmithError(f"{str(directory / MANIFEST_FILE)!r} is malformed: {err!r}") from None
    load_model(directory / WEIGHTS_FILE, model)
    return model.eval()
