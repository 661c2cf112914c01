"""argparse types shared by the ``archsmith`` command and the commands defined beside their
families (``search``): plain Python, no torch, so parsing answers at once."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["key_value"]


def key_value(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE``; VALUE is JSON when it parses (``3``, ``[64, 64]``, ``true``), else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw
