"""A heartbeat of archsmith's own, for ask/tell loops on any storage.

Optuna's heartbeat (``RDBStorage(heartbeat_interval=...)``) runs only inside ``study.optimize``
and only for relational storages. archsmith drives trials by ask/tell on journal files too, so it
keeps its own: while a trial runs, a daemon thread stamps the time into the trial's system
attribute :data:`HEARTBEAT` every ``interval`` seconds. A trial still ``RUNNING`` whose last stamp
(or start, before the first stamp) is older than ``grace`` seconds belongs to a dead worker.

:func:`requeue_stale` fails such a trial and enqueues a fresh one with the same parameters. Both
storages make the failing step a compare-and-set: a trial that is already finished cannot be
failed again (Optuna raises ``UpdateFinishedTrialError``), so when two workers spot the same stale
trial only the one whose update lands first re-queues it, and a slow worker that was wrongly
thought dead cannot overwrite the retry's outcome either.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

__all__ = [
    "HEARTBEAT",
    "RETRY_OF",
    "Heartbeat",
    "requeue_stale",
    "retried_numbers",
    "stale_trials",
]

#: system attr: the wall-clock time (seconds since the epoch) of the trial's last heartbeat
HEARTBEAT = "archsmith:heartbeat"
#: user attr of a re-queued trial: the number of the stale trial it repeats
RETRY_OF = "retry_of"


class Heartbeat:
    """One daemon thread per worker that stamps the worker's current trial every ``interval``
    seconds; :meth:`beating` marks which trial that is.

    The thread lives as long as the worker: starting one per trial cost more than a whole
    tabular-benchmark trial (most of the loop's overhead over a bare ask/tell loop).
    """

    def __init__(self, study: optuna.Study, interval: float) -> None:
        self._storage = study._storage
        self._interval = interval
        self._lock = threading.Lock()
        self._trial_id: int | None = None
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="archsmith-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            with self._lock:
                trial_id = self._trial_id
                if trial_id is None or self._closed:
                    continue
                try:
                    self._storage.set_trial_system_attr(trial_id, HEARTBEAT, time.time())
                except UpdateFinishedTrialError:
                    self._trial_id = None  # re-queued by another worker: nothing to keep alive

    @contextlib.contextmanager
    def beating(self, trial_id: int) -> Iterator[None]:
        """Keep ``trial_id`` alive for the duration of the block. The trial's start time is its
        first sign of life, so nothing is written before the first interval has passed (a
        table look-up ends long before)."""
        with self._lock:
            self._trial_id = trial_id
        try:
            yield
        finally:
            with self._lock:  # no stamp can land on the trial once it is told
                self._trial_id = None

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join()

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _last_sign_of_life(trial: optuna.trial.FrozenTrial) -> float:
    stamp = trial.system_attrs.get(HEARTBEAT)
    if isinstance(stamp, int | float):
        return float(stamp)
    start = trial.datetime_start
    return start.timestamp() if isinstance(start, datetime) else time.time()


def stale_trials(
    study: optuna.Study, grace: float, now: float | None = None
) -> list[optuna.trial.FrozenTrial]:
    """``RUNNING`` trials with no heartbeat for more than ``grace`` seconds."""
    now = time.time() if now is None else now
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [t for t in running if now - _last_sign_of_life(t) > grace]


def requeue_stale(study: optuna.Study, grace: float, now: float | None = None) -> list[int]:
    """Fail every stale trial and enqueue its parameters again; returns the re-queued numbers.

    Only the worker whose failing update lands first re-queues a trial (module docstring).
    """
    requeued = []
    for trial in stale_trials(study, grace, now):
        try:
            ok = study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # another worker got there first, or the trial just finished
        if not ok:
            continue
        # the retry names the stale trial (a finished trial takes no more attributes): that is
        # how counts and reports tell a dead worker's trial from a failed candidate
        study.enqueue_trial(
            trial.params,
            user_attrs={RETRY_OF: trial.number},
            skip_if_exists=False,
        )
        requeued.append(trial.number)
    return requeued


def retried_numbers(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """Numbers of the stale trials that ``trials`` re-run (not to be counted twice)."""
    return {int(t.user_attrs[RETRY_OF]) for t in trials if RETRY_OF in t.user_attrs}
