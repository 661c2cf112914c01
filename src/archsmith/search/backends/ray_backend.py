"""Workers as Ray tasks: the same search on a Ray cluster (the ``distributed`` extra).

Each of ``workers`` Ray tasks runs the ordinary worker loop
(:func:`archsmith.search.study.worker_main`) wherever Ray places it, on the study's shared
storage: every trial's training runs on the node that runs its task, and the storage (PostgreSQL
for many machines; a journal file where every node sees the same file system) is what they share.
A node lost mid-trial is no special case: its trials stop beating and are re-queued like those
of any dead worker.
"""

from __future__ import annotations

import importlib
import socket
from collections.abc import Callable
from typing import Any

from archsmith.errors import ArchsmithError
from archsmith.search.config import SearchConfig
from archsmith.search.study import worker_main

__all__ = ["run_on_ray"]


def _ray() -> Any:
    try:
        # Ray is an optional, heavy dependency (hundreds of MB): imported only for --backend ray
        return importlib.import_module("ray")
    except ImportError:
        raise ArchsmithError(
            "--backend ray needs Ray: pip install 'archsmith[distributed]'"
        ) from None


def run_on_ray(config: SearchConfig, show: Callable[[], None] | None, poll_s: float = 1.0) -> None:
    """Run ``config.workers`` worker tasks on the Ray cluster at ``config.ray_address``."""
    ray = _ray()
    address = config.ray_address
    if address not in (None, "local", "auto"):
        _check_reachable(address)
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(
                address=None if address in (None, "local") else address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        except Exception as err:  # ConnectionError, RuntimeError, ... by Ray version
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ArchsmithError(
                f"--address: cannot reach the Ray cluster {address!r}: {first}"
            ) from None
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(worker_main)
        pending = [task.remote(config.to_dict(), w, 1) for w in range(config.workers)]
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=poll_s)
            if show is not None:
                show()
            for ref in list(_):
                _get(ray, ref)
    finally:
        if started_here:
            ray.shutdown()


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds on a cluster that is not there: Ray itself keeps retrying for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ArchsmithError(f"--address: expected HOST:PORT of a Ray head, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as err:
        raise ArchsmithError(
            f"--address: cannot reach the Ray cluster {address!r}: {err.strerror or err}"
        ) from None


def _get(ray: Any, ref: Any) -> None:
    try:
        ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = err.cause if hasattr(err, "cause") else None
        if isinstance(cause, ArchsmithError):
            raise ArchsmithError(str(cause)) from None
        raise ArchsmithError(
            f"search: a Ray worker failed: {str(err).strip().splitlines()[-1]}"
        ) from None
