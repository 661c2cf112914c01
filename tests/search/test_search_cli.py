"""``archsmith search`` end to end: a real search through the CLI, kill -9 of every process
mid-run and ``--resume``, on the default journal storage and on a real PostgreSQL server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from archsmith.cli import main
from archsmith.search import records
from archsmith.search.config import load_config
from archsmith.search.heartbeat import RETRY_OF
from archsmith.search.storage import load_study
from archsmith.search.worker import progress_of
from pg_server import postgres_server, unavailable_reason

SPACE = str(Path(__file__).parent / "data" / "tiny_space.py")
ARCHSMITH = [sys.executable, "-m", "archsmith.cli"]


def study_of(run: Path) -> optuna.Study:
    config = load_config(run)
    return load_study(config.storage, config.study_name)


def search_args(out: Path, *extra: str) -> list[str]:
    return [
        "search", "--task", "digits-flat", "--space", f"{SPACE}:space", "--strategy", "random",
        "--epochs", "2", "--out", str(out), "--no-progress", *extra,
    ]  # fmt: skip


def test_search_finds_a_design_under_the_budget_and_writes_its_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(search_args(out, "--trials", "6", "--max-params", "3000", "--seed", "1")) == 0
    printed = capsys.readouterr().out
    study = study_of(out)
    p = progress_of(study)
    assert p.evaluated == 6 and p.complete == 6
    for t in study.trials:
        cost = t.user_attrs[records.COST]
        widths = t.params["width"]
        # the MLP's parameter count by hand: 64 -> w (-> w) -> 10
        depth = t.params["depth"]
        expected = (
            64 * widths + widths + (depth - 1) * (widths * widths + widths) + widths * 10 + 10
        )
        assert cost["params"] == expected
        assert (t.state == TrialState.COMPLETE) == (expected <= 3000)
    assert "best #" in printed and "report:" in printed
    assert (out / "trials.csv").exists() and (out / "report" / "index.html").exists()
    best = json.loads((out / "best_spec.json").read_text())
    assert best["model"] == "mlp"
    # the best spec retrains, with the trial's seed and settings, to the accuracy it reported
    feasible = [t for t in study.trials if t.state == TrialState.COMPLETE]
    winner = next(t for t in feasible if t.user_attrs[records.SPEC] == best)
    reported = winner.user_attrs[records.METRICS]["test"]["accuracy"]
    seed = winner.user_attrs[records.SEED]
    retrain = tmp_path / "retrain"
    train = ["train", "--spec", str(out / "best_spec.json"), "--epochs", "2"]
    assert main([*train, "--seed", str(seed), "--out", str(retrain), "--no-progress"]) == 0
    metrics = json.loads((retrain / "metrics.json").read_text())
    assert abs(metrics["test"]["accuracy"] - reported) < 0.03
    # the report rebuilds from the storage alone
    (out / "report" / "index.html").unlink()
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert (out / "report" / "index.html").exists()
    assert str(out / "report" / "index.html") in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "holds no search" in capsys.readouterr().err


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["--space", f"{tmp_path}/nope.py:space"], "nope.py"),
        (["--space", f"{SPACE}:missing"], "missing"),
        (["--space", f"{SPACE}:unregistered"], "layrnorm"),
        (["--resume"], "holds no search"),
        (["--storage", "postgresql://nobody@127.0.0.1:1/none"], "cannot reach"),
    ]
    for i, (extra, needle) in enumerate(cases):
        out = tmp_path / f"run{i}"
        args = search_args(out, "--trials", "2")
        if extra[0] == "--space":
            args[args.index("--space") + 1] = extra[1]
        else:
            args += extra
        assert main(args) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("archsmith: error:") and needle in err, err
        assert "\n" not in err and "Traceback" not in err


def _kill_mid_run_and_resume(out: Path, storage: list[str]) -> None:
    args = search_args(out, "--trials", "10", "--workers", "2", *storage)
    proc = subprocess.Popen(
        [*ARCHSMITH, *args], start_new_session=True, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 240
    finished: dict[int, tuple] = {}
    while time.time() < deadline:
        time.sleep(0.5)
        if proc.poll() is not None:
            pytest.fail(f"search ended before the kill: {proc.stderr.read().decode()[-500:]}")
        if not (out / "search.json").exists():
            continue
        trials = study_of(out).get_trials()
        done = [t for t in trials if t.state.is_finished()]
        if len(done) >= 3 and any(t.state == TrialState.RUNNING for t in trials):
            break
    os.killpg(proc.pid, signal.SIGKILL)  # the command and both workers, mid-trial
    proc.wait()
    before = study_of(out).get_trials()
    finished = {t.number: (t.state, t.params, t.values) for t in before if t.state.is_finished()}
    running = {t.number for t in before if t.state == TrialState.RUNNING}
    assert finished and running
    assert main(["search", "--out", str(out), "--resume", "--no-progress"]) == 0
    after = study_of(out).get_trials()
    for number, (state, params, values) in finished.items():
        same = [t for t in after if t.number == number]
        assert len(same) == 1 and (same[0].state, same[0].params, same[0].values) == (
            state, params, values
        )  # fmt: skip
    # no finished trial is repeated: each retry repeats a trial that was running at the kill
    retried = {t.user_attrs[RETRY_OF] for t in after if RETRY_OF in t.user_attrs}
    assert retried == running
    assert all(t.state != TrialState.RUNNING for t in after)
    assert progress_of(study_of(out)).evaluated == 10


@pytest.mark.slow
def test_kill_every_process_then_resume_on_the_journal(tmp_path: Path) -> None:
    _kill_mid_run_and_resume(tmp_path / "run", [])


@pytest.mark.slow
@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_kill_every_process_then_resume_on_postgresql(tmp_path: Path) -> None:
    with postgres_server() as url:
        _kill_mid_run_and_resume(tmp_path / "run", ["--storage", url])
