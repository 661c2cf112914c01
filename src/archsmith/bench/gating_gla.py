"""GLA rows of ``archsmith bench gating`` (work in progress)."""

from typing import Any

from archsmith.bench.registry import BenchContext


def gla_rows(ctx: BenchContext) -> list[dict[str, Any]]:
    return []
