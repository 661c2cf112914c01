"""Compression of trained models by tensor networks (``archsmith compress``).

CompactifAI's recipe (Tomut et al., 2024: layers replaced by truncated MPOs, then healed by brief
retraining) with per-layer ranks chosen by sensitivity under a parameter budget:

- :mod:`.formats` — the layer formats (``mpo``: activation-aware 2-core MPO; ``tt``, ``btt``,
  ``tucker``);
- :mod:`.sensitivity` and :mod:`.allocate` — per-layer error curves and the budget allocation;
- :mod:`.heal` — distillation on the original model's outputs;
- :mod:`.pipeline` — the whole run and its report; :mod:`.saving` — safetensors + JSON manifest;
- subjects: :mod:`.minilm` (all-MiniLM-L6-v2, sentences from :mod:`.corpus`) and
  :mod:`.archsmith_model` (a model trained with ``archsmith train``).
"""

from archsmith.tensornet.compress.allocate import RankCurve, allocate_greedy, allocate_uniform
from archsmith.tensornet.compress.formats import METHODS, LayerFormat, get_format
from archsmith.tensornet.compress.heal import HealConfig, heal
from archsmith.tensornet.compress.metrics import mean_cosine, neighbour_recall
from archsmith.tensornet.compress.pipeline import CompressConfig, CompressResult, compress
from archsmith.tensornet.compress.saving import load_compressed, save_compressed
from archsmith.tensornet.compress.subject import Subject

__all__ = [
    "METHODS",
    "CompressConfig",
    "CompressResult",
    "HealConfig",
    "LayerFormat",
    "RankCurve",
    "Subject",
    "allocate_greedy",
    "allocate_uniform",
    "compress",
    "get_format",
    "heal",
    "load_compressed",
    "mean_cosine",
    "neighbour_recall",
    "save_compressed",
]
