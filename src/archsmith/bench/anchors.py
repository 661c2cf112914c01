"""Anchor packages: the libraries a benchmark compares archsmith against.

Anchors (memcnn, revlib, tensorly-torch, Optuna, ...) live in the optional ``bench`` extra. A
case asks for one with :func:`require_anchor`; when it is missing, the case reports that with
:func:`anchor_missing_row` in its table, so a missing anchor is visible, never silently dropped.

Example::

    try:
        memcnn = require_anchor("memcnn")
    except AnchorMissing as err:
        rows.append(anchor_missing_row(err.package, model="revnet", depth=8))
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from archsmith.errors import ArchsmithError

__all__ = ["INSTALL_HINT", "AnchorMissing", "anchor_missing_row", "require_anchor"]

INSTALL_HINT = "pip install 'archsmith[bench]'"


class AnchorMissing(ArchsmithError):
    """An anchor package cannot be imported; ``package`` names it."""

    def __init__(self, package: str, reason: str = "not installed") -> None:
        super().__init__(f"anchor package {package!r} {reason} ({INSTALL_HINT})")
        self.package = package
        self.reason = reason


def require_anchor(package: str) -> ModuleType:
    """Import and return the anchor module ``package``; raise :class:`AnchorMissing` if absent.

    ``package`` is the import name (``"tltorch"`` for tensorly-torch). A package that is
    installed but fails to import counts as missing too, with the error as the reason.
    """
    try:
        return importlib.import_module(package)
    except ImportError as err:
        top = package.split(".")[0]
        absent = isinstance(err, ModuleNotFoundError) and err.name in (package, top)
        reason = "not installed" if absent else f"failed to import: {err}"
        raise AnchorMissing(package, reason) from None


def anchor_missing_row(package: str, /, **keys: Any) -> dict[str, Any]:
    """A table row saying anchor ``package`` is missing, with the case's own ``keys`` first.

    ``anchor_missing_row("memcnn", model="revnet")`` ->
    ``{"model": "revnet", "missing": "memcnn", "note": "not installed (pip install ...)"}``.
    """
    return {**keys, "missing": package, "note": f"not installed ({INSTALL_HINT})"}
