"""What ``archsmith compress`` does once its arguments are parsed: pick the subject, run the
pipeline into a temporary directory that becomes ``--out`` on success, print the report table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from archsmith.build import create_model
from archsmith.errors import ArchsmithError
from archsmith.measure.tables import format_rows_table
from archsmith.registry import get_model_entry
from archsmith.tasks import get_task
from archsmith.tensornet.compress.archsmith_model import TaskModelSubject, load_run
from archsmith.tensornet.compress.corpus import split_sentences
from archsmith.tensornet.compress.heal import HealConfig
from archsmith.tensornet.compress.minilm import SentenceEncoderSubject, load_minilm
from archsmith.tensornet.compress.pipeline import (
    CompressConfig,
    CompressResult,
    check_out_dir,
    compress,
    output_dir,
)
from archsmith.tensornet.compress.subject import Subject

__all__ = ["PRETRAINED", "CompressRequest", "make_subject", "run_compress"]

#: ``--pretrained`` names.
PRETRAINED = ("minilm",)


@dataclass(frozen=True)
class CompressRequest:
    """The parsed ``archsmith compress`` command line.

    Exactly one of ``model`` (a registered model name, fresh weights, on ``task``),
    ``checkpoint`` (an ``archsmith train --out`` run directory) or ``pretrained``.
    """

    out: Path
    config: CompressConfig
    model: str | None = None
    task: str | None = None
    model_options: Mapping[str, Any] = field(default_factory=dict)
    task_options: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: Path | None = None
    pretrained: str | None = None
    force: bool = False
    seed: int = 0


def make_subject(req: CompressRequest) -> Subject:
    """The :class:`Subject` the request names (loads or builds the model)."""
    given = [x for x in (req.model, req.checkpoint, req.pretrained) if x is not None]
    if len(given) != 1:
        raise ArchsmithError("compress: give exactly one of --model, --checkpoint, --pretrained")
    if req.pretrained is not None:
        if req.pretrained not in PRETRAINED:
            raise ArchsmithError(
                f"--pretrained: unknown model {req.pretrained!r}; choose one of "
                f"{', '.join(PRETRAINED)}"
            )

        return SentenceEncoderSubject(load_minilm(), split_sentences())

    if req.checkpoint is not None:
        model, task = load_run(req.checkpoint)
        return TaskModelSubject(model, task, label=f"{req.checkpoint.name} on {task.name}")

    assert req.model is not None
    task = get_task(req.task or get_model_entry(req.model).default_task, **req.task_options)
    model = create_model(req.model, task=task, **req.model_options)
    return TaskModelSubject(model, task, label=f"{req.model} on {task.name}")


def run_compress(
    req: CompressRequest, log: Callable[[str], None] = print
) -> tuple[CompressResult, str]:
    """Compress, heal, save into ``req.out`` atomically; returns the result and its table."""
    check_out_dir(req.out, req.force)  # fail before loading anything
    torch.manual_seed(req.seed)
    subject = make_subject(req)
    with output_dir(req.out, req.force) as tmp:
        result = compress(subject, req.config, out_dir=tmp, log=log)
    hidden = {"model", "method", "target"}  # in the title
    table = format_rows_table(
        [{k: v for k, v in row.items() if k not in hidden} for row in result.rows],
        f"archsmith compress {subject.label}: --method {req.config.method} "
        f"--target-params {req.config.target}",
    )
    return result, table


def heal_config(steps: int, lr: float, batch_size: int, seed: int) -> HealConfig:
    """The healing settings of the command line (validated)."""
    return HealConfig(steps=steps, lr=lr, batch_size=batch_size, seed=seed)
