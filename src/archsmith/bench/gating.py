"""``archsmith bench gating``: gated linear attention forms and mixture-of-experts throughput.

The GLA rows come from :mod:`archsmith.bench.gating_gla`, the MoE rows from
:mod:`archsmith.bench.gating_moe`; both use this run's machine info for ``peak_gflops``.
"""

from __future__ import annotations

from typing import Any

from archsmith.bench.gating_gla import gla_rows
from archsmith.bench.gating_moe import moe_rows
from archsmith.bench.registry import BenchContext, register_bench


@register_bench("gating", "GLA chunkwise/recurrent/parallel vs SDPA and fla; MoE top-2 vs dense")
def gating(ctx: BenchContext) -> list[dict[str, Any]]:
    return gla_rows(ctx) + moe_rows(ctx)
