"""The ``archsmith`` command.

Every user error prints one line, ``archsmith: error: ...``, and exits with status 2.

The CLI is the top floor (ARCHITECTURE.md), so nothing imports it and it may import anything.
Each command imports what it needs when it runs, not at the top of this module: torch and the
families take about 1.7 s to import here, which ``archsmith --help`` and a mistyped flag (0.06 s)
should not pay. These late imports dodge no cycle; ``lint-imports`` checks them like any other.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from archsmith.argtypes import key_value
from archsmith.errors import ArchsmithError

__all__ = ["main"]

EXIT_USAGE = 2

#: Task options that say what to predict; giving one on the command line replaces them all.
_TARGET_OPTIONS = frozenset({"target", "duration", "event", "kind"})


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake in one line (no usage dump) with exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise ArchsmithError(f"{self.prog.split()[-1]}: {message}")


def _positive_int_or(word: str, meaning: Any) -> Any:
    """An argparse type: a positive integer, or ``word`` (which parses to ``meaning``)."""

    def parse(text: str) -> Any:
        if text == word:
            return meaning
        value = int(text) if text.isdigit() else 0
        if value < 1:
            raise argparse.ArgumentTypeError(
                f"expected a positive integer or {word!r}, got {text!r}"
            )
        return value

    return parse


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--task",
        help="task name, csv:PATH or npz:PATH (see 'archsmith tasks'); "
        "defaults to the task a --spec file names",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--model", help="registered model name (see 'archsmith models')")
    source.add_argument("--spec", help="architecture spec JSON file")
    p.add_argument(
        "--opt",
        action="append",
        default=[],
        type=key_value,
        metavar="KEY=VALUE",
        help="model option, e.g. --opt hidden=[128,128] (repeatable)",
    )
    p.add_argument(
        "--task-opt",
        action="append",
        default=[],
        type=key_value,
        metavar="KEY=VALUE",
        help="task option, e.g. --task-opt seq_len=128 (repeatable)",
    )
    p.add_argument("--target", help="target column of a csv: task")
    p.add_argument("--duration", help="survival time column of a csv: task (with --event)")
    p.add_argument(
        "--event", help="event indicator column (1 = event, 0 = censored) of a csv: task"
    )
    p.add_argument(
        "--kind",
        choices=("classification", "regression"),
        help="override the inferred kind of a csv:/npz: task",
    )


def _parser() -> _Parser:
    parser = _Parser(
        prog="archsmith",
        description="Build, measure, compress and search efficient neural networks.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    sub.add_parser("tasks", help="list the registered tasks")
    models = sub.add_parser("models", help="list the registered models")
    models.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. '*cnn*'")

    train = sub.add_parser(
        "train",
        help="train a model on a task",
        description="Train a model on a task. Training settings not given as flags come from "
        "the model's recipe (see 'archsmith models NAME'), else from the trainer's defaults; "
        "with --resume, from the run directory.",
    )
    _add_model_args(train)
    # SUPPRESS: a flag the user did not give is absent from the namespace and leaves its setting
    # to the run directory (--resume), the model's recipe, then TrainConfig's default
    # (archsmith.train.resolve_config); None could not say "not given", as --patience off is None
    unset = argparse.SUPPRESS
    train.add_argument(
        "--epochs", type=int, help="passes over the training split (default 30)", default=unset
    )
    train.add_argument(
        "--batch-size",
        type=_positive_int_or("full", "full"),
        default=unset,
        help="samples per step, or 'full' for the whole training split (default 64)",
    )
    train.add_argument("--lr", type=float, help="peak learning rate (default 3e-3)", default=unset)
    train.add_argument(
        "--weight-decay", type=float, help="AdamW weight decay (default 1e-2)", default=unset
    )
    train.add_argument(
        "--patience",
        type=_positive_int_or("off", None),
        help="early-stopping patience in epochs, or 'off' (default 10)",
        default=unset,
    )
    train.add_argument(
        "--seed", type=int, help="seeds weights and data order (default 0)", default=unset
    )
    train.add_argument(
        "--weights",
        choices=("best", "last", "swa"),
        default=unset,
        help="weights the run ends with: best validation epoch (default), last epoch, or swa "
        "(average of the epochs after --swa-start)",
    )
    train.add_argument(
        "--swa-start",
        type=float,
        help="with --weights swa: share of epochs before averaging begins (default 0.5)",
        default=unset,
    )
    train.add_argument(
        "--no-recipe",
        action="store_true",
        help="ignore the model's recipe: the trainer's defaults and the factory's options",
    )
    train.add_argument("--out", help="run directory (default: runs/TASK-MODEL)")
    train.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    train.add_argument("--no-progress", action="store_true", help="no live progress bar")

    cost = sub.add_parser(
        "cost", help="measure a model's cost (parameters, FLOPs, memory, latency)"
    )
    _add_model_args(cost)
    cost.add_argument("--batch-size", type=int, default=64)
    cost.add_argument("--repeats", type=int, default=10)
    cost.add_argument("--json", help="also write the cost as JSON to this file")

    diagnose = sub.add_parser(
        "diagnose", help="per-layer activation mean and variance at initialisation (SNN check)"
    )
    _add_model_args(diagnose)
    diagnose.add_argument("--batch-size", type=int, default=512)
    diagnose.add_argument("--seed", type=int, default=0)
    diagnose.add_argument("--layers", choices=("activations", "leaves"), default="activations")
    diagnose.add_argument("--png", help="also plot mean and variance by depth to this PNG file")
    diagnose.add_argument("--json", help="also write the statistics as JSON to this file")

    _add_compress_parser(sub)
    _add_search_parsers(sub)

    bench = sub.add_parser("bench", help="run a benchmark side by side with its anchor libraries")
    bench.add_argument("name", help="benchmark name (e.g. 'baseline')")
    bench.add_argument("--quick", action="store_true", help="reduced grid")
    bench.add_argument("--json", help="write {'machine': ..., 'rows': [...]} to this file")
    return parser


def _add_search_parsers(sub: Any) -> None:
    # the search's arguments live beside it, in a module that imports neither torch nor optuna
    from archsmith.search.arguments import add_report_parser, add_search_parser

    add_search_parser(sub)
    add_report_parser(sub)


def _cmd_search(args: argparse.Namespace) -> None:
    from archsmith.search.command import search_command

    search_command(args)


def _cmd_report(args: argparse.Namespace) -> None:
    from archsmith.search.command import report_command

    report_command(args)


def _add_compress_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compress",
        help="replace a model's nn.Linear layers by tensor-network layers under a parameter budget",
        description="Replace a model's nn.Linear layers by tensor-network layers (per-layer ranks "
        "chosen by sensitivity to meet --target-params), optionally heal by distillation on the "
        "original model's outputs, and save the compressed model (model.safetensors, "
        "compress.json with per-layer format and ranks) and a report (report.json) into --out.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="registered model name, fresh weights (with --task)")
    source.add_argument(
        "--checkpoint", metavar="DIR", help="an 'archsmith train --out DIR' run directory"
    )
    source.add_argument("--pretrained", choices=("minilm",), help="all-MiniLM-L6-v2 (offline)")
    p.add_argument("--task", help="task for --model (default: the model's default task)")
    p.add_argument("--opt", action="append", default=[], type=key_value, metavar="KEY=VALUE")
    p.add_argument("--task-opt", action="append", default=[], type=key_value, metavar="KEY=VALUE")
    p.add_argument(
        "--method",
        required=True,
        choices=("mpo", "tt", "btt", "tucker"),
        help="mpo: activation-aware 2-core MPO; tt: TT-matrix (TT-SVD); btt: block "
        "tensor-train; tucker: Tucker (HOSVD)",
    )
    p.add_argument(
        "--target-params",
        required=True,
        type=float,
        metavar="FRACTION",
        help="fraction of the compressed linear layers' parameters REMOVED, in (0, 1): "
        "0.5 keeps half of them, 0.7 keeps 30%%",
    )
    p.add_argument(
        "--allocation",
        choices=("sensitivity", "activation", "weight", "uniform"),
        default="sensitivity",
        help="how per-layer ranks are chosen (default: sensitivity)",
    )
    p.add_argument(
        "--heal-steps", type=int, default=0, metavar="N", help="distillation steps (default 0)"
    )
    p.add_argument("--heal-lr", type=float, default=3e-4, help="peak AdamW lr (default 3e-4)")
    p.add_argument("--heal-batch-size", type=int, default=16, help="samples per step (default 16)")
    p.add_argument("--seed", type=int, default=0, help="seeds healing order (default 0)")
    p.add_argument(
        "--out", required=True, metavar="DIR", help="output directory (must be new or empty)"
    )
    p.add_argument("--force", action="store_true", help="replace a non-empty --out")


def _task_options(args: argparse.Namespace) -> dict[str, Any]:
    options = dict(args.task_opt)
    if args.target is not None:
        options["target"] = args.target
    if args.kind is not None:
        options["kind"] = args.kind
    if args.duration is not None:
        options["duration"] = args.duration
    if args.event is not None:
        options["event"] = args.event
    return options


def _build(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """Task, model and spec from the command line's --task / --model / --spec / --opt."""
    from archsmith.build import build, create_model
    from archsmith.spec import load_spec
    from archsmith.tasks import get_task

    if args.spec:
        if args.opt:
            raise ArchsmithError("--opt: model options go into the spec file when --spec is used")
        spec = load_spec(args.spec)
        name = args.task or spec.task
        if name is None:
            raise ArchsmithError(f"{args.command}: the spec names no task; give --task")
        # the spec's task options (a csv target, mqar's seq_len, ...) hold unless overridden
        saved = dict(spec.task_options) if name == spec.task else {}
        given = _task_options(args)
        if given.keys() & _TARGET_OPTIONS:  # a new target form replaces the saved one
            saved = {k: v for k, v in saved.items() if k not in _TARGET_OPTIONS}
        task = get_task(name, **{**saved, **given})
        model = build(spec, task=task)
    else:
        if not args.model:
            raise ArchsmithError(f"{args.command}: give --model NAME or --spec FILE")
        if not args.task:
            raise ArchsmithError(f"{args.command}: give --task (see 'archsmith tasks')")
        task = get_task(args.task, **_task_options(args))
        model = create_model(args.model, task=task, **dict(args.opt))
    return task, model, model.archsmith_spec


def _cmd_tasks(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from archsmith.tasks import get_task, list_tasks

    table = Table(title="archsmith tasks (user data: csv:PATH --target COL, npz:PATH)")
    for col in ("task", "kind", "input", "train/val/test", "metrics", "description"):
        table.add_column(col)
    for name in list_tasks():
        s = get_task(name).summary()
        sizes = s.get("sizes", {})
        table.add_row(
            name,
            str(s.get("kind", "")),
            f"{s.get('input', {}).get('kind', '')} {list(s.get('input', {}).get('shape', []))}",
            "/".join(str(sizes.get(k, "")) for k in ("train", "val", "test")),
            ", ".join(s.get("metrics", [])),
            str(s.get("description", "")),
        )
    Console(width=160).print(table)


def _cmd_models(args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    from archsmith.registry import get_model_entry, list_models

    names = list_models(args.pattern)
    if not names:
        raise ArchsmithError(f"no model matches {args.pattern!r} (see 'archsmith models')")
    if names == [args.pattern]:  # one model by its name: everything about it
        _print_model(get_model_entry(args.pattern))
        return
    table = Table(title="archsmith models ('archsmith models NAME': options and full recipe)")
    for col in ("model", "family", "inputs", "tasks", "default task", "recipe", "description"):
        table.add_column(col)
    for name in names:
        e = get_model_entry(name)
        settings = e.recipe.describe(options=False)
        if e.recipe.options:  # the options in full would crowd the table; NAME shows them
            settings += f" +{len(e.recipe.options)} option{'s' * (len(e.recipe.options) > 1)}"
        table.add_row(
            name,
            e.family,
            "/".join(e.inputs),
            "/".join(e.task_kinds),
            e.default_task,
            settings.removeprefix("- "),
            e.description,
        )
    Console(width=180).print(table)


#: factory arguments the task fills in (archsmith.build.create_model), not options
_INJECTED = frozenset({"in_shape", "num_outputs", "vocab_size", "per_position"})


def _option(value: Any) -> str:
    """A model option's value as ``--opt KEY=VALUE`` takes it (JSON for null and booleans)."""
    from archsmith.recipe import format_setting

    return json.dumps(value) if value is None or isinstance(value, bool) else format_setting(value)


def _print_model(entry: Any) -> None:
    """``archsmith models NAME``: the entry, its options with their defaults, and its recipe
    next to the trainer's defaults."""
    import inspect
    from dataclasses import fields

    from rich.console import Console
    from rich.table import Table

    from archsmith.recipe import format_setting as show
    from archsmith.train import TrainConfig

    console = Console(width=160, highlight=False)
    console.print(f"[bold]{entry.name}[/bold] — {entry.description}")
    console.print(
        f"family {entry.family}; inputs {'/'.join(entry.inputs)}; tasks "
        f"{'/'.join(entry.task_kinds)}; default task {entry.default_task}"
    )
    params = {
        p.name: p
        for p in inspect.signature(entry.factory).parameters.values()
        if p.name not in _INJECTED and p.kind is not inspect.Parameter.VAR_KEYWORD
    }
    options = [
        name if p.default is inspect.Parameter.empty else f"{name}={_option(p.default)}"
        for name, p in params.items()
    ]
    console.print(f"options (--opt KEY=VALUE): {', '.join(options) or '-'}")
    recipe = entry.recipe
    if recipe.is_empty():
        console.print("recipe: none ('archsmith train' uses the trainer's defaults)")
        return
    table = Table(title=f"recipe of {entry.name}: what 'archsmith train' uses unless a flag says")
    for col in ("setting", "recipe", "default (trainer's, or the factory's for an option)"):
        table.add_column(col)
    defaults = TrainConfig()
    chosen = recipe.settings()
    for f in fields(TrainConfig):  # in the trainer's order
        if f.name in chosen:
            table.add_row(f.name, show(chosen[f.name]), show(getattr(defaults, f.name)))
    for key, value in recipe.options.items():
        default = params[key].default if key in params else inspect.Parameter.empty
        shown = "-" if default is inspect.Parameter.empty else _option(default)
        table.add_row(f"option {key}", _option(value), shown)
    console.print(table)
    if recipe.note:
        console.print(f"why: {recipe.note}")


def _print_cost(model: Any, task: Any, batch_size: int, repeats: int, title: str) -> Any:
    from archsmith.cost import format_cost_table, measure

    x, y = task.example_batch(batch_size)
    cost = measure(model, x, target=y, loss_fn=task.loss, repeats=repeats)
    print(f"parameters: {cost.params}")
    print(format_cost_table(cost, title=title))
    return cost


#: the train command's flags that are TrainConfig settings (absent from the namespace when not
#: given)
_TRAIN_SETTINGS = (
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "patience",
    "seed",
    "weights",
    "swa_start",
)


def _apply_recipe_options(args: argparse.Namespace) -> dict[str, Any]:
    """Put the model recipe's options under the user's ``--opt`` (which win); return the ones
    that went in. A user option that replaces one of them gets a note: the recipe's training
    settings were chosen with the recipe's options."""
    from archsmith.registry import get_model_entry

    recipe = get_model_entry(args.model).recipe
    given = dict(args.opt)
    applied = {k: v for k, v in recipe.options.items() if k not in given}
    replaced = [f"{k}={given[k]!r}" for k in recipe.options if k in given]
    if replaced:
        print(
            f"note: --opt {', '.join(replaced)} replaces the recipe's option; its training "
            f"settings ({recipe.describe()}) were chosen with it (flags override them, "
            "--no-recipe drops the recipe)"
        )
    args.opt = [*applied.items(), *args.opt]
    return applied


def _cmd_train(args: argparse.Namespace) -> None:
    from archsmith.train import (
        RESUME_FILE,
        SPEC_FILE,
        ResolvedConfig,
        fit,
        resolve_config,
        seed_everything,
    )

    given = {k: getattr(args, k) for k in _TRAIN_SETTINGS if hasattr(args, k)}
    out = Path(args.out) if args.out else None
    saved: ResolvedConfig | None = None
    if args.resume:
        if out is None:
            raise ArchsmithError("--resume: give the run directory with --out")
        if not (out / RESUME_FILE).exists():
            raise ArchsmithError(f"--resume: nothing to resume in {str(out)!r} (no {RESUME_FILE})")
        if args.model or args.spec:
            raise ArchsmithError(
                "--resume: the model comes from the run directory; drop --model/--spec"
            )
        if args.no_recipe:
            raise ArchsmithError(
                "--resume: the settings come from the run directory; drop --no-recipe"
            )
        args.spec = str(out / SPEC_FILE)
        saved = ResolvedConfig.load(out)
    recipe_options = _apply_recipe_options(args) if args.model and not args.no_recipe else {}
    seed_everything(given.get("seed", saved.config.seed if saved else 0))
    task, model, spec = _build(args)
    if out is None:
        label = args.model or Path(args.spec).stem
        out = Path("runs") / f"{Path(task.name).name.replace(':', '_')}-{label}"
    if saved is not None:  # the run's own settings, with what the user gives now on top
        settings = saved.override(**given)
    else:  # a fresh run (or one started before train.json): flags > recipe > defaults
        settings = resolve_config(None if args.no_recipe else spec.model, **given)
        settings = replace(settings, model_options=recipe_options)
    config = settings.config
    if args.resume:
        print(f"resuming {out}")
    elif not settings.recipe.is_empty():
        print(
            f"recipe of {settings.model}: {settings.recipe.describe()} (a flag overrides a "
            "setting, --opt an option; --no-recipe drops the recipe)"
        )
    out.mkdir(parents=True, exist_ok=True)
    settings.save(out)  # before the first checkpoint: a killed run resumes with these settings
    result = fit(
        model,
        task,
        config,
        out_dir=out,
        spec=spec,
        resume=args.resume,
        progress=not args.no_progress,
    )
    print(f"run: {out} (best epoch {result.best_epoch} of {result.epochs_run})")
    for name in task.metric_names:
        print(f"val {name}: {result.val[name]:.4f}")
    for name in task.metric_names:
        print(f"test {name}: {result.test[name]:.4f}")
    batch = config.steps_batch(len(task.train))
    _print_cost(model, task, batch, repeats=10, title=f"cost of {out.name} (batch {batch})")


def _cmd_cost(args: argparse.Namespace) -> None:
    from archsmith.io import atomic_write_json

    if args.batch_size < 1 or args.repeats < 1:
        raise ArchsmithError("cost: --batch-size and --repeats must be >= 1")
    task, model, _ = _build(args)
    label = args.model or Path(args.spec).name
    cost = _print_cost(
        model,
        task,
        args.batch_size,
        args.repeats,
        title=f"cost of {label} on {task.name} (batch {args.batch_size})",
    )
    if args.json:
        try:
            atomic_write_json(args.json, cost.as_dict())
        except OSError as err:
            raise ArchsmithError(f"--json: cannot write {args.json!r}: {err.strerror}") from None


def _cmd_diagnose(args: argparse.Namespace) -> None:
    from archsmith.io import atomic_write_json
    from archsmith.selfnorm import diagnose
    from archsmith.selfnorm.plot import plot_layer_stats
    from archsmith.train import seed_everything

    if args.batch_size < 2:
        raise ArchsmithError("diagnose: --batch-size must be >= 2 (a variance needs two samples)")
    seed_everything(args.seed)
    task, model, _ = _build(args)
    x, _ = task.example_batch(args.batch_size)
    stats = diagnose(model, x, layers=args.layers)
    if not stats:
        raise ArchsmithError(
            f"diagnose: the model has no {args.layers} to record (try --layers leaves)"
        )
    from archsmith.measure.tables import format_rows_table

    rows = [
        {"layer": s.index, "name": s.name, "kind": s.kind, "mean": s.mean, "var": s.var}
        for s in stats
    ]
    print(
        format_rows_table(
            rows,
            f"activation statistics of {args.model or args.spec} on {task.name} (batch {len(x)})",
        )
    )
    if args.json:
        try:
            atomic_write_json(args.json, rows)
        except OSError as err:
            raise ArchsmithError(f"--json: cannot write {args.json!r}: {err.strerror}") from None
    if args.png:
        plot_layer_stats(stats, args.png, title=f"{args.model or args.spec} on {task.name}")
        print(f"wrote {args.png}")


def _cmd_compress(args: argparse.Namespace) -> None:
    from archsmith.tensornet.compress.command import CompressRequest, heal_config, run_compress
    from archsmith.tensornet.compress.pipeline import CompressConfig

    if (args.task or args.opt or args.task_opt) and not args.model:
        raise ArchsmithError("compress: --task, --opt and --task-opt go with --model only")
    config = CompressConfig(
        method=args.method,
        target=args.target_params,
        allocation=args.allocation,
        heal=heal_config(args.heal_steps, args.heal_lr, args.heal_batch_size, args.seed),
    )
    request = CompressRequest(
        out=Path(args.out),
        config=config,
        model=args.model,
        task=args.task,
        model_options=dict(args.opt),
        task_options=dict(args.task_opt),
        checkpoint=Path(args.checkpoint) if args.checkpoint else None,
        pretrained=args.pretrained,
        force=args.force,
        seed=args.seed,
    )
    _, table = run_compress(request)
    print(table)
    print(f"wrote {args.out}")


def _cmd_bench(args: argparse.Namespace) -> None:
    from archsmith.bench import run_bench

    run_bench(args.name, quick=args.quick, json_path=args.json)


_COMMANDS = {
    "tasks": _cmd_tasks,
    "models": _cmd_models,
    "train": _cmd_train,
    "cost": _cmd_cost,
    "diagnose": _cmd_diagnose,
    "compress": _cmd_compress,
    "bench": _cmd_bench,
    "search": _cmd_search,
    "report": _cmd_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 user error, 130 interrupted)."""
    try:
        args = _parser().parse_args(argv)
        _COMMANDS[args.command](args)
    except ArchsmithError as err:
        print(f"archsmith: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("archsmith: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
