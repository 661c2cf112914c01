"""Training: :func:`fit` and :func:`evaluate`.

AdamW (decoupled weight decay, Loshchilov & Hutter 2019) with a linear warm-up and a cosine
schedule, early stopping on the task's primary validation metric, a live progress bar, and
checkpoints after every epoch that make ``resume=True`` continue an interrupted run exactly
where it stopped (same batches, same dropout masks, same result as an uninterrupted run).

A run directory holds:

- ``model.safetensors`` — the best weights so far (by the validation metric);
- ``spec.json`` — the architecture spec that rebuilds the model;
- ``metrics.json`` — ``{"val": {...}, "test": {...}, ...}`` for the best weights, at the end;
- ``resume.safetensors`` — the full training state after the last finished epoch;
- ``train.json`` — written by ``archsmith train`` (:meth:`ResolvedConfig.save`): the training
  settings and where each came from (the user, the model's recipe, the trainer's default), so
  that ``--resume`` continues with the same settings.

Training settings are merged in one place, :func:`resolve_config` (or
:meth:`TrainConfig.for_model`): a setting given by the caller wins over the model's registered
recipe (:mod:`archsmith.recipe`), which wins over :class:`TrainConfig`'s default.
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn

from archsmith.checkpoint import (
    load_model,
    load_training_extras,
    load_training_state,
    save_model,
    save_training_state,
)
from archsmith.errors import ArchsmithError, did_you_mean
from archsmith.io import atomic_write_json
from archsmith.layers.aux_loss import training_loss
from archsmith.recipe import Recipe
from archsmith.registry import ModelEntry, get_model_entry
from archsmith.tasks.evaluation import evaluate

if TYPE_CHECKING:
    from archsmith.spec import Spec
    from archsmith.tasks import Task

__all__ = [
    "ConfigSource",
    "EpochEnd",
    "FitResult",
    "ResolvedConfig",
    "TrainConfig",
    "evaluate",
    "fit",
    "resolve_config",
    "seed_everything",
]

MODEL_FILE, SPEC_FILE, METRICS_FILE, RESUME_FILE, TRAIN_FILE = (
    "model.safetensors",
    "spec.json",
    "metrics.json",
    "resume.safetensors",
    "train.json",
)

#: where a training setting came from: the caller (a command-line flag), the model's recipe,
#: or :class:`TrainConfig`'s default
ConfigSource = Literal["given", "recipe", "default"]


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`fit`.

    Attributes:
        epochs: passes over the training split.
        batch_size: samples per step; ``"full"``: the whole training split in every step (for
            losses that compare samples within a batch, such as the Cox partial likelihood on a
            small survival set, where a mini-batch is a noisy estimate).
        lr: peak learning rate (after warm-up; cosine decay to ``lr * min_lr_ratio``).
        weight_decay: AdamW decay, applied to weight matrices and kernels only (not to biases,
            norm scales or embeddings' positions, which are 1-D or scalars).
        warmup_fraction: share of all steps spent warming up linearly.
        patience: epochs without improvement of the validation metric before stopping
            (``None``: never stop early).
        grad_clip: maximum global gradient norm (``None``: no clipping).
        seed: seeds the data order and all randomness in training.
        weights: which weights the run ends with (and writes to ``model.safetensors``):
            ``"best"`` — those of the best validation epoch (early stopping applies);
            ``"last"`` — those of the last epoch; ``"swa"`` — the average of the weights of
            every epoch after ``swa_start * epochs`` (stochastic weight averaging, Izmailov et
            al., 2018; float buffers such as BatchNorm statistics are averaged too, integer
            ones come from the last epoch). ``"last"`` and ``"swa"`` train all ``epochs``:
            they are for data so small that a validation metric is too noisy to select on
            (a 15% validation part of 200 patients holds a handful of events).
        swa_start: with ``weights="swa"``, the share of epochs before averaging begins.
    """

    epochs: int = 30
    batch_size: int | Literal["full"] = 64
    lr: float = 3e-3
    weight_decay: float = 1e-2
    warmup_fraction: float = 0.05
    min_lr_ratio: float = 0.01
    patience: int | None = 10
    grad_clip: float | None = 1.0
    seed: int = 0
    eval_batch_size: int = 512
    weights: Literal["best", "last", "swa"] = "best"
    swa_start: float = 0.5

    def __post_init__(self) -> None:
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size == "full"
            or (isinstance(self.batch_size, int) and self.batch_size >= 1),
            "lr": self.lr > 0,
            "weight_decay": self.weight_decay >= 0,
            "warmup_fraction": 0 <= self.warmup_fraction < 1,
            "patience": self.patience is None or self.patience >= 1,
            "grad_clip": self.grad_clip is None or self.grad_clip > 0,
            "weights": self.weights in ("best", "last", "swa"),
            "swa_start": 0 <= self.swa_start < 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ArchsmithError(f"{name}: invalid value {getattr(self, name)!r}")

    def steps_batch(self, num_train: int) -> int:
        """Samples per step on a training split of ``num_train`` samples."""
        return num_train if self.batch_size == "full" else max(1, min(self.batch_size, num_train))

    @classmethod
    def for_model(cls, model: str | ModelEntry | Recipe | None, /, **overrides: Any) -> TrainConfig:
        """The settings to train ``model`` with: ``overrides`` > its recipe > the defaults.

        ``model``: a registered name, its entry, a recipe, or ``None`` (no recipe). E.g.
        ``TrainConfig.for_model("snn", epochs=15, seed=2)``. See :func:`resolve_config` for
        where each setting came from.
        """
        return resolve_config(model, **overrides).config


_FIELDS = tuple(f.name for f in fields(TrainConfig))
_RECIPE_FIELDS = frozenset(f.name for f in fields(Recipe))


@dataclass(frozen=True)
class ResolvedConfig:
    """A :class:`TrainConfig` with the source of each of its settings.

    Attributes:
        config: the merged settings.
        sources: every :class:`TrainConfig` field -> ``"given"`` / ``"recipe"`` / ``"default"``.
        recipe: the recipe that was merged in (an empty one when the model has none).
        model: the registered model's name, when the recipe came from one.
        model_options: the recipe's model options the model was built with (set by the caller
            that builds it, as ``archsmith train`` does; a record only: the run's ``spec.json``
            holds every option the model was built with).
    """

    config: TrainConfig
    sources: Mapping[str, ConfigSource]
    recipe: Recipe = field(default_factory=Recipe)
    model: str | None = None
    model_options: Mapping[str, Any] = field(default_factory=dict)

    def override(self, **overrides: Any) -> ResolvedConfig:
        """These settings with ``overrides`` given on top (e.g. more epochs on a resume)."""
        _check_names(overrides)
        config = TrainConfig(**{**asdict(self.config), **overrides})
        sources: dict[str, ConfigSource] = {**self.sources, **dict.fromkeys(overrides, "given")}
        return replace(self, config=config, sources=sources)

    def from_recipe(self) -> dict[str, Any]:
        """The settings that came from the recipe, by name."""
        return {k: getattr(self.config, k) for k, v in self.sources.items() if v == "recipe"}

    def save(self, run: str | Path) -> Path:
        """Write ``run/train.json``: the settings, their sources, the model, its recipe and the
        recipe's options the model was built with."""
        return atomic_write_json(
            Path(run) / TRAIN_FILE,
            {
                "config": asdict(self.config),
                "sources": dict(self.sources),
                "model": self.model,
                "recipe": self.recipe.to_dict(),
                "recipe_options": dict(self.model_options),
            },
        )

    @classmethod
    def load(cls, run: str | Path) -> ResolvedConfig | None:
        """The settings :meth:`save` wrote into ``run`` (``None`` when it holds no
        ``train.json``: a run started before there was one, or by :func:`fit` directly)."""
        path = Path(run) / TRAIN_FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            saved = {k: v for k, v in data["config"].items() if k in _FIELDS}
            sources = {k: data.get("sources", {}).get(k, "default") for k in _FIELDS}
            recipe = Recipe(
                **{k: v for k, v in data.get("recipe", {}).items() if k in _RECIPE_FIELDS}
            )
            model = data.get("model")
            options = dict(data.get("recipe_options", {}))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise ArchsmithError(f"{str(path)!r}: not a readable {TRAIN_FILE} ({err})") from None
        # the saved settings already hold the recipe's: it is kept as a record, not merged again
        # (a recipe changed since the run started must not change how the run continues)
        return cls(
            TrainConfig(**saved),
            sources,
            recipe,
            model if isinstance(model, str) else None,
            options,
        )


def _check_names(settings: Mapping[str, Any]) -> None:
    for name in settings:
        if name not in _FIELDS:
            raise ArchsmithError(f"unknown training setting {name!r}{did_you_mean(name, _FIELDS)}")


def resolve_config(
    model: str | ModelEntry | Recipe | None = None, /, **overrides: Any
) -> ResolvedConfig:
    """Merge the training settings of ``model``: ``overrides`` > its recipe > the defaults.

    The one place this precedence lives: ``archsmith train``, the benchmarks and the search call
    it, so a model trains with the same settings whichever of them runs it.

    Args:
        model: a registered model name, its :class:`~archsmith.registry.ModelEntry`, a
            :class:`~archsmith.recipe.Recipe`, or ``None`` (the defaults only).
        **overrides: :class:`TrainConfig` fields the caller sets (unknown names raise).

    A bad value in the recipe raises naming the recipe; one in ``overrides`` names the field,
    as :class:`TrainConfig` does.
    """
    name: str | None = None
    if isinstance(model, str):
        model = get_model_entry(model)
    if isinstance(model, ModelEntry):
        name, recipe = model.name, model.recipe
    else:
        recipe = model or Recipe()
    _check_names(overrides)
    from_recipe = recipe.settings()
    try:
        TrainConfig(**from_recipe)
    except ArchsmithError as err:
        where = f"recipe of model {name!r}" if name else "recipe"
        raise ArchsmithError(f"{where}: {err}") from None
    config = TrainConfig(**{**from_recipe, **overrides})
    sources: dict[str, ConfigSource] = {
        k: "given" if k in overrides else "recipe" if k in from_recipe else "default"
        for k in _FIELDS
    }
    return ResolvedConfig(config, sources, recipe, name)


@dataclass
class EpochEnd:
    """What a callback sees after each epoch (its checkpoint is already on disk)."""

    epoch: int  # 1-based number of the epoch just finished
    train_loss: float
    val: dict[str, float]
    improved: bool


@dataclass
class FitResult:
    """The outcome of :func:`fit`: metrics of the best weights and the per-epoch history."""

    val: dict[str, float]
    test: dict[str, float]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (call before building a model for reproducible weights)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _lr_at(step: int, total: int, config: TrainConfig) -> float:
    warmup = max(1, int(total * config.warmup_fraction))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    floor = config.lr * config.min_lr_ratio
    return floor + (config.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _improved(value: float, best: float | None, greater_is_better: bool) -> bool:
    if best is None or math.isnan(best):
        return not math.isnan(value)
    return value > best if greater_is_better else value < best


def fit(
    model: nn.Module,
    task: Task,
    config: TrainConfig | None = None,
    *,
    out_dir: str | Path | None = None,
    spec: Spec | None = None,
    resume: bool = False,
    progress: bool = True,
    callbacks: Sequence[Callable[[EpochEnd], None]] = (),
) -> FitResult:
    """Train ``model`` on ``task`` and return the metrics of its best validation epoch.

    Args:
        out_dir: run directory for checkpoints, ``spec.json`` and ``metrics.json``
            (``None``: keep everything in memory).
        spec: written to ``spec.json``; defaults to ``model.archsmith_spec`` when present.
        resume: continue from ``out_dir/resume.safetensors`` (the model and config must be the
            ones the run started with).
        progress: show a live progress bar with the loss and validation metric.
        callbacks: called after each epoch, once its checkpoint is written.

    A model that defines ``on_fit_start(task)`` (as Lightning's hook of that name) has it called
    once before the first step of a fresh run, not on resume: the place for a data-fitted
    initialisation (e.g. the tree tensor network's ``init="isometries"``). Such a model
    re-initialises on every fresh ``fit``: to fine-tune trained weights, set its ``init`` back
    to the default first.

    On return ``model`` holds the best weights.
    """
    config = config or TrainConfig()
    run = Path(out_dir) if out_dir is not None else None
    spec = spec or getattr(model, "archsmith_spec", None)
    params = _param_groups(model, config.weight_decay)
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    metric, greater = task.primary_metric, task.greater_is_better
    batch_size = config.steps_batch(len(task.train))
    steps_per_epoch = math.ceil(len(task.train) / batch_size)
    total_steps = steps_per_epoch * config.epochs

    state: dict[str, Any] = {
        "epoch": 0,
        "step": 0,
        "best": None,
        "best_epoch": 0,
        "bad_epochs": 0,
        "stopped_early": False,
        "history": [],
        "config": asdict(config),
        "swa_count": 0,
    }
    best_weights: dict[str, torch.Tensor] | None = None
    swa_sum: dict[str, torch.Tensor] = {}
    if resume:
        if run is None:
            raise ArchsmithError("resume: needs a run directory (out_dir)")
        if not (run / RESUME_FILE).exists():
            raise ArchsmithError(f"resume: nothing to resume in {str(run)!r} (no {RESUME_FILE})")
        state = load_training_state(run / RESUME_FILE, model, optimizer)
        swa_sum = load_training_extras(run / RESUME_FILE)
        state.setdefault("swa_count", 0)
    else:
        seed_rng = torch.Generator().manual_seed(config.seed)
        torch.manual_seed(int(torch.randint(2**62, (1,), generator=seed_rng)))
        on_fit_start = getattr(model, "on_fit_start", None)
        if callable(on_fit_start):
            on_fit_start(task)
    if run is not None:
        run.mkdir(parents=True, exist_ok=True)
        if spec is not None and not resume:
            spec.save(run / SPEC_FILE)

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  val {task.fields[val]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, disable=not progress, transient=False) as bar:
        bar_task = bar.add_task(
            f"{task.name}", total=total_steps, completed=state["step"], loss="-", val="-"
        )
        epoch = state["epoch"]
        while epoch < config.epochs and not state["stopped_early"]:
            model.train()
            order = torch.randperm(
                len(task.train),
                generator=torch.Generator().manual_seed(config.seed * 1_000_003 + epoch),
            )
            loss_sum, batches = 0.0, 0
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                for group in optimizer.param_groups:
                    group["lr"] = _lr_at(state["step"], total_steps, config)
                loss = training_loss(model, task.train.x[idx], task.train.y[idx], task.loss)
                if not torch.isfinite(loss):
                    raise ArchsmithError(
                        f"training diverged: loss is {loss.item()} at epoch {epoch + 1}, step "
                        f"{state['step'] + 1} (try a lower --lr)"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                state["step"] += 1
                loss_sum, batches = loss_sum + loss.item(), batches + 1
                bar.update(bar_task, advance=1, loss=f"{loss_sum / batches:.4f}")
            epoch += 1
            val = evaluate(model, task, "val", config.eval_batch_size)
            improved = _improved(val[metric], state["best"], greater)
            if improved:
                state.update(best=val[metric], best_epoch=epoch, bad_epochs=0)
                if config.weights == "best":
                    if run is not None:
                        save_model(run / MODEL_FILE, model)
                    else:
                        best_weights = _copy_state(model)
            else:
                state["bad_epochs"] += 1
            if config.weights == "swa" and epoch > config.swa_start * config.epochs:
                _accumulate(swa_sum, model)
                state["swa_count"] += 1
            if config.weights != "best" and run is not None:
                # the weights this run would end with if it stopped now
                save_model(run / MODEL_FILE, _final_model(model, swa_sum, state["swa_count"]))
            stop = config.patience is not None and state["bad_epochs"] >= config.patience
            if stop and config.weights == "best":
                state["stopped_early"] = True
            train_loss = loss_sum / max(1, batches)
            state["history"].append(
                {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    **{f"val_{k}": v for k, v in val.items()},
                }
            )
            state["epoch"] = epoch
            bar.update(
                bar_task,
                description=f"{task.name} epoch {epoch}/{config.epochs}",
                val=f"{metric} {val[metric]:.4f}",
            )
            if run is not None:
                save_training_state(run / RESUME_FILE, model, optimizer, state, extra=swa_sum)
            for callback in callbacks:
                callback(EpochEnd(epoch, train_loss, val, improved))

    if config.weights == "best":
        if run is not None and (run / MODEL_FILE).exists():
            load_model(run / MODEL_FILE, model)
        elif best_weights is not None:
            model.load_state_dict(best_weights)
    elif config.weights == "swa" and state["swa_count"]:
        _load_average(model, swa_sum, state["swa_count"])
    result = FitResult(
        val=evaluate(model, task, "val", config.eval_batch_size),
        test=evaluate(model, task, "test", config.eval_batch_size),
        best_epoch=state["best_epoch"],
        epochs_run=state["epoch"],
        stopped_early=state["stopped_early"],
        history=state["history"],
    )
    if run is not None:
        atomic_write_json(
            run / METRICS_FILE,
            {
                "task": task.name,
                "primary_metric": metric,
                **result.as_dict(),
                "config": asdict(config),
            },
        )
    return result


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _accumulate(total: dict[str, torch.Tensor], model: nn.Module) -> None:
    """Add ``model``'s floating-point weights and buffers to the running sum ``total``
    (float64, so that a long average does not lose the small late changes)."""
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            value = value.detach().double()
            total[key] = total[key] + value if key in total else value.clone()


def _load_average(model: nn.Module, total: dict[str, torch.Tensor], count: int) -> None:
    """Load ``total / count`` into ``model``'s floating-point entries (the rest stay)."""
    state = model.state_dict()
    for key, value in total.items():
        state[key].copy_((value / count).to(state[key].dtype))


def _final_model(model: nn.Module, total: dict[str, torch.Tensor], count: int) -> nn.Module:
    """``model`` itself (weights="last", or no epoch averaged yet) or a copy holding the
    running average (weights="swa")."""
    if not count:
        return model
    averaged = copy.deepcopy(model)
    _load_average(averaged, total, count)
    return averaged
