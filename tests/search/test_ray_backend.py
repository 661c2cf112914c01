"""The search on a Ray cluster: a local Ray head started by the test (``ray start``), two worker
tasks on the study's journal storage, and the same trials a local search would record."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from optuna.trial import TrialState

from archsmith.cli import main
from archsmith.search import records
from archsmith.search.config import load_config
from archsmith.search.storage import load_study
from archsmith.search.worker import progress_of

SPACE = str(Path(__file__).parent / "data" / "tiny_space.py")
RAY = Path(sys.executable).with_name("ray")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None or not RAY.exists(),
        reason="Ray is not installed (pip install 'archsmith[distributed]')",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    temp = tmp_path_factory.mktemp("ray")
    subprocess.run(
        [str(RAY), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
         "--num-cpus", "2", "--include-dashboard", "false", "--temp-dir", str(temp),
         "--disable-usage-stats"],
        check=True, capture_output=True, timeout=180, env=env,
    )  # fmt: skip
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(RAY), "stop", "--force"], capture_output=True, timeout=120, env=env)


def test_search_runs_its_trials_as_ray_tasks(
    ray_head: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = [
        "search", "--task", "digits-flat", "--space", f"{SPACE}:space", "--strategy", "random",
        "--epochs", "1", "--trials", "4", "--workers", "2", "--backend", "ray",
        "--address", ray_head, "--out", str(out), "--no-progress",
    ]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    config = load_config(out)
    study = load_study(config.storage, config.study_name)
    assert progress_of(study).evaluated == 4
    # the trials ran in Ray's worker processes, not in this one
    pids = {t.user_attrs[records.WORKER]["pid"] for t in study.trials}
    assert os.getpid() not in pids and None not in pids
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        assert records.METRICS in t.user_attrs


def test_an_unreachable_cluster_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "search", "--task", "digits-flat", "--space", f"{SPACE}:space", "--trials", "1",
        "--backend", "ray", "--address", f"127.0.0.1:{_free_port()}", "--out",
        str(tmp_path / "r"), "--no-progress",
    ]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot reach the Ray cluster" in err and "\n" not in err
