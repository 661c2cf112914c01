"""The archsmith command: user errors are one line with exit status 2; the end-to-end runs."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from archsmith.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("archsmith: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (
            ["train", "--task", "digts", "--model", "mlp"],
            ["unknown task 'digts'", "did you mean 'digits'"],
        ),
        (
            ["train", "--task", "digits", "--model", "mpl"],
            ["unknown model 'mpl'", "did you mean 'mlp'"],
        ),
        (
            ["train", "--task", "digits", "--model", "mlp", "--opt", "hidden=[0]"],
            ["options.hidden[0]: must be >= 1"],
        ),
        (
            ["train", "--task", "digits", "--model", "mlp", "--opt", "hiden=[8]"],
            ["options.hiden: unknown option"],
        ),
        (
            ["train", "--task", "digits", "--model", "mlp", "--epochs", "0"],
            ["epochs: invalid value 0"],
        ),
        (
            ["train", "--task", "digits", "--model", "mlp", "--epochs", "many"],
            ["--epochs", "invalid int value"],
        ),
        (
            ["train", "--task", "digits", "--model", "mlp", "--weights", "swa", "--swa-start", "1"],
            ["swa_start: invalid value 1.0"],
        ),
        (
            ["train", "--task", "digits", "--model", "mlp", "--weights", "mean"],
            ["--weights", "invalid choice: 'mean'"],
        ),
        (["train", "--task", "digits"], ["give --model NAME or --spec FILE"]),
        (["train", "--model", "mlp"], ["give --task"]),
        (
            ["train", "--task", "digits", "--model", "mlp", "--spec", "x.json"],
            ["not allowed with argument"],
        ),
        (["train", "--task", "digits", "--spec", "/nonexistent/spec.json"], ["cannot read spec"]),
        (
            ["cost", "--task", "digits", "--model", "cnn", "--batch-size", "0"],
            ["--batch-size and --repeats must be >= 1"],
        ),
        (["models", "zzz*"], ["no model matches 'zzz*'"]),
        (["bench", "baselin"], ["did you mean 'baseline'"]),
        (["trian"], ["invalid choice: 'trian'"]),
        (
            ["train", "--resume", "--task", "digits", "--out", "/nonexistent/run"],
            ["nothing to resume"],
        ),
        (
            ["train", "--task", "csv:/nonexistent/data.csv", "--target", "y", "--model", "mlp"],
            ["cannot read"],
        ),
        (
            ["train", "--task", "digits", "--model", "mlp", "--batch-size", "half"],
            ["--batch-size", "expected a positive integer or 'full', got 'half'"],
        ),
        (
            ["train", "--task", "digits", "--model", "mlp", "--patience", "0"],
            ["--patience", "expected a positive integer or 'off', got '0'"],
        ),
    ],
)
def test_user_errors_are_one_line_exit_2(capsys, argv: list[str], fragments: list[str]) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


def test_malformed_spec_file(capsys, tmp_path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps({"task": "digits", "blocks": [{"type": "linear", "out_features": -2}]})
    )
    code, _, err = run_cli(capsys, "cost", "--task", "digits", "--spec", str(spec))
    assert_one_line_error(code, err, "blocks[0].out_features: must be >= 1")
    spec.write_text("{not json")
    code, _, err = run_cli(capsys, "cost", "--task", "digits", "--spec", str(spec))
    assert_one_line_error(code, err, "is not valid JSON")


def test_tasks_and_models_listings(capsys) -> None:
    code, out, _ = run_cli(capsys, "tasks")
    assert code == 0
    for name in ("digits", "breast-cancer-survival", "mqar", "selective-copy"):
        assert name in out
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and all(m in out for m in ("mlp", "cnn", "transformer", "cox_mlp"))


def param_count(text: str) -> int:
    match = re.search(r"^parameters: (\d+)$", text, re.MULTILINE)
    assert match, text
    return int(match.group(1))


@pytest.mark.parametrize("weights", ["last", "swa"])
def test_train_weights_option_reaches_the_trainer(
    capsys, tmp_path, monkeypatch: pytest.MonkeyPatch, weights: str
) -> None:
    import archsmith.train

    seen: list = []

    def fake_fit(model, task, config, **kwargs):  # records the config instead of training
        seen.append(config)
        raise SystemExit(0)

    monkeypatch.setattr(archsmith.train, "fit", fake_fit)  # the CLI imports it when it runs
    argv = ["train", "--task", "digits", "--model", "mlp", "--weights", weights]
    with pytest.raises(SystemExit):
        main([*argv, "--swa-start", "0.25", "--out", str(tmp_path / "run"), "--no-progress"])
    assert seen[0].weights == weights and seen[0].swa_start == 0.25


@pytest.mark.slow
def test_train_digits_mlp_end_to_end(capsys, tmp_path) -> None:
    run = tmp_path / "run"
    code, out, err = run_cli(
        capsys, "train", "--task", "digits", "--model", "mlp", "--out", str(run), "--no-progress"
    )
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.90
    assert f"test accuracy: {metrics['test']['accuracy']:.4f}" in out
    for name in ("model.safetensors", "spec.json", "metrics.json"):
        assert (run / name).is_file()
    trained_params = param_count(out)
    code, out, err = run_cli(
        capsys,
        "cost",
        "--task",
        "digits",
        "--spec",
        str(run / "spec.json"),
        "--json",
        str(tmp_path / "cost.json"),
    )
    assert code == 0, err
    assert param_count(out) == trained_params
    assert json.loads((tmp_path / "cost.json").read_text())["params"] == trained_params


@pytest.mark.slow
def test_train_on_user_csv(capsys, tmp_path) -> None:
    rng = np.random.default_rng(0)
    n = 300
    size = rng.normal(size=n)
    color = rng.choice(["red", "green", "blue"], size=n)
    label = np.where(size + (color == "red") * 1.5 > 0.5, "yes", "no")
    lines = ["size,color,noise,label"] + [
        f"{s:.4f},{c},{rng.normal():.3f},{y}" for s, c, y in zip(size, color, label, strict=True)
    ]
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(
        capsys,
        "train",
        "--task",
        f"csv:{path}",
        "--target",
        "label",
        "--model",
        "mlp",
        "--epochs",
        "15",
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
    )
    assert code == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] > 0.8
    spec = json.loads((tmp_path / "run" / "spec.json").read_text())
    assert spec["task"] == f"csv:{path}"
    assert spec["task_options"]["target"] == "label"
    # the spec carries the task and its options: cost needs neither --task nor --target
    code, out, err = run_cli(
        capsys, "cost", "--spec", str(tmp_path / "run" / "spec.json"), "--repeats", "2"
    )
    assert code == 0, err
    assert "parameters: " in out


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("a,b,y\n1,2,0\n3,4,5,1\n", ["row 3 has 4 fields, expected 3"]),
        ("", ["is empty"]),
        ("a,b,y\n1,,0\n" + "1,2,1\n" * 20, ["column 'b'", "missing value", "row 2"]),
        ("a,b,y\n" + "1,2,0\n" * 20, ["target column 'label' not found"]),
        (
            "name,a,y\n" + "".join(f"id{i},{i},{i % 2}\n" for i in range(30)),
            ["column 'name' is not numeric", "cannot encode"],
        ),
    ],
)
def test_malformed_csv_is_one_line_exit_2(
    capsys, tmp_path, content: str, fragments: list[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    target = "label" if "label" in fragments[0] else "y"
    code, _, err = run_cli(
        capsys, "train", "--task", f"csv:{path}", "--target", target, "--model", "mlp"
    )
    assert_one_line_error(code, err, *fragments)


@pytest.mark.slow
def test_killed_run_resumes_from_checkpoint(tmp_path) -> None:
    """Kill a real training process after its first checkpoint, then finish it with --resume."""
    run = tmp_path / "run"
    argv = [
        sys.executable,
        "-m",
        "archsmith.cli",
        "train",
        "--task",
        "mqar",
        "--model",
        "transformer",
        "--epochs",
        "40",
        "--patience",
        "100",
        "--out",
        str(run),
        "--no-progress",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(6000):  # poll for up to ~5 minutes: a hang fails instead of blocking CI
            if (run / "resume.safetensors").exists():
                break
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.05)
        else:
            pytest.fail("the training process wrote no checkpoint")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "metrics.json").exists()
    resumed = subprocess.run(
        [
            *argv[:4],
            "--resume",
            "--task",
            "mqar",
            "--epochs",
            "2",
            "--patience",
            "100",
            "--out",
            str(run),
            "--no-progress",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2  # continued from epoch >= 1 and ran to the new end
    assert len(metrics["history"]) == 2


def test_cli_module_has_no_traceback_on_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "archsmith.cli", "cost", "--task", "nope", "--model", "mlp"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archsmith: error: unknown task 'nope'")


def capture_fit(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Make ``archsmith.train.fit`` record (config, spec) and stop the command."""
    import archsmith.train

    seen: list[tuple] = []

    def fake_fit(model, task, config, **kwargs):
        seen.append((config, kwargs["spec"]))
        raise SystemExit(0)

    monkeypatch.setattr(archsmith.train, "fit", fake_fit)
    return seen


def train_argv(tmp_path, *argv: str) -> list[str]:
    return ["train", *argv, "--out", str(tmp_path / "run"), "--no-progress"]


def test_train_takes_the_model_recipe_unless_a_flag_says(
    capsys, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = capture_fit(monkeypatch)
    snn = ["--task", "digits-flat", "--model", "snn", "--opt", "depth=2"]
    with pytest.raises(SystemExit):
        main(train_argv(tmp_path, *snn))
    config = seen[-1][0]
    # the snn recipe (archsmith.selfnorm.models), the rest the trainer's defaults
    assert (config.lr, config.weight_decay, config.epochs, config.patience) == (1e-4, 0.0, 60, 15)
    assert (config.batch_size, config.weights, config.seed) == (64, "best", 0)
    assert "recipe of snn: lr=0.0001" in capsys.readouterr().out
    sources = json.loads((tmp_path / "run" / "train.json").read_text())["sources"]
    assert sources["lr"] == "recipe" and sources["batch_size"] == "default"
    with pytest.raises(SystemExit):
        main(train_argv(tmp_path, *snn, "--lr", "1e-3", "--patience", "off", "--epochs", "7"))
    config = seen[-1][0]
    assert (config.lr, config.weight_decay, config.epochs, config.patience) == (1e-3, 0.0, 7, None)
    sources = json.loads((tmp_path / "run" / "train.json").read_text())["sources"]
    assert sources["lr"] == "given" and sources["weight_decay"] == "recipe"
    with pytest.raises(SystemExit):
        main(train_argv(tmp_path, *snn, "--no-recipe"))
    config = seen[-1][0]
    assert (config.lr, config.weight_decay, config.epochs, config.patience) == (3e-3, 1e-2, 30, 10)


def test_recipe_options_go_under_the_users_opt_and_into_the_spec(
    capsys, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = capture_fit(monkeypatch)
    with pytest.raises(SystemExit):
        main(train_argv(tmp_path, "--task", "digits", "--model", "mps"))
    config, spec = seen[-1]
    assert spec.options == {"init": "kernel", "chi": 32, "feature_scale": 0.6}
    assert (config.lr, config.epochs) == (1e-4, 10)
    assert "note:" not in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(train_argv(tmp_path, "--task", "digits", "--model", "mps", "--opt", "chi=8"))
    config, spec = seen[-1]
    assert spec.options == {"init": "kernel", "chi": 8, "feature_scale": 0.6}
    assert "note: --opt chi=8 replaces the recipe's option" in capsys.readouterr().out
    recorded = json.loads((tmp_path / "run" / "train.json").read_text())
    assert recorded["recipe_options"] == {"init": "kernel", "feature_scale": 0.6}
    with pytest.raises(SystemExit):
        main(train_argv(tmp_path, "--task", "digits", "--model", "mps", "--no-recipe"))
    assert seen[-1][1].options == {}


def test_resume_continues_with_the_runs_own_settings(
    capsys, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ["--task", "digits", "--model", "mlp", "--opt", "hidden=[8]", "--epochs", "1"]
    code, _, err = run_cli(capsys, *train_argv(tmp_path, *first, "--lr", "0.02", "--seed", "3"))
    assert code == 0, err
    seen = capture_fit(monkeypatch)
    with pytest.raises(SystemExit):  # no --lr, no --seed: the run directory's, not the defaults
        main(train_argv(tmp_path, "--resume", "--task", "digits", "--epochs", "2"))
    config = seen[-1][0]
    assert (config.lr, config.seed, config.epochs) == (0.02, 3, 2)
    assert json.loads((tmp_path / "run" / "train.json").read_text())["config"]["epochs"] == 2
    code, _, err = run_cli(
        capsys, *train_argv(tmp_path, "--resume", "--task", "digits", "--no-recipe")
    )
    assert_one_line_error(code, err, "--resume", "drop --no-recipe")


def test_train_help_names_the_trainers_defaults(capsys) -> None:
    from archsmith.train import TrainConfig

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    defaults = TrainConfig()
    for flag, value in (
        ("--epochs", "30"),
        ("--batch-size", "64"),
        ("--lr", "3e-3"),
        ("--weight-decay", "1e-2"),
        ("--patience", "10"),
        ("--swa-start", "0.5"),
    ):
        assert f"(default {value})" in text.split(flag, 2)[2], flag
        assert float(value) == getattr(defaults, flag[2:].replace("-", "_"))


def test_models_name_shows_the_recipe(capsys) -> None:
    code, out, _ = run_cli(capsys, "models", "snn")
    assert code == 0
    lines = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") == 4}
    assert "0.0001" in lines["lr"] and "0.003" in lines["lr"]  # recipe next to the default
    assert "15" in lines["patience"] and "weight_decay" in lines
    assert "options (--opt KEY=VALUE): width=256, depth=8, dropout=0.05" in out
    assert "why: " in out
    code, out, _ = run_cli(capsys, "models", "mps")
    assert code == 0 and "option chi" in out and "kernel" in out
    code, out, _ = run_cli(capsys, "models", "mlp")
    assert code == 0 and "recipe: none" in out
    code, out, _ = run_cli(capsys, "models", "snn*")
    assert code == 0 and "snn_cox" in out and "lr=0.0001" in out and "recipe" in out


@pytest.mark.slow
def test_snn_recipe_reaches_the_readme_accuracy(capsys, tmp_path) -> None:
    """The README's plain command: a 32-layer SNN on z-scored digits, no training flags but
    --epochs (the recipe's 60), reaches the band the README reports (0.94-0.95 over seeds 0-2
    with the recipe, 0.34 with the trainer's defaults)."""
    run = tmp_path / "run"
    code, _, err = run_cli(
        capsys,
        "train",
        "--task",
        "digits-flat",
        "--task-opt",
        "standardize=true",
        "--model",
        "snn",
        "--opt",
        "depth=32",
        "--epochs",
        "60",
        "--out",
        str(run),
        "--no-progress",
    )
    assert code == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["config"]["lr"] == 1e-4 and metrics["config"]["weight_decay"] == 0.0
    assert metrics["test"]["accuracy"] >= 0.92
