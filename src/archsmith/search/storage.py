"""Where a study lives: an Optuna storage, a journal file in the run directory by default.

- Default: ``RUN_DIR/study.journal``, Optuna's append-only :class:`JournalStorage` on a file
  (``JournalFileBackend`` with an ``open(O_EXCL)`` lock): safe for several processes on one
  machine, and a kill -9 at any moment leaves at most one torn last line, which Optuna skips.
- ``--storage URL``: any SQLAlchemy URL (``postgresql://user@host/db``) through Optuna's
  :class:`RDBStorage`, the backend Optuna recommends for many machines. SQLite works for one
  process, but Optuna advises against it for parallel writers ("database is locked").

Trials whose worker died stay ``RUNNING`` forever in any storage; :mod:`archsmith.search.heartbeat`
finds and re-queues them (Optuna's own heartbeat runs only inside ``study.optimize``, not in an
ask/tell loop, and not for journal storages at all).
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

from archsmith.errors import ArchsmithError

__all__ = ["JOURNAL_FILE", "describe_storage", "load_study", "open_storage", "storage_url"]

JOURNAL_FILE = "study.journal"


def storage_url(storage: str | None, run_dir: Path) -> str:
    """The storage a run uses: ``storage`` as given, or ``journal:RUN_DIR/study.journal``."""
    if storage is None:
        return f"journal:{(run_dir / JOURNAL_FILE).resolve()}"
    return storage


def open_storage(url: str) -> BaseStorage:
    """Open ``url`` (``journal:PATH`` or an SQLAlchemy URL); an unusable one is one line."""
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        if not path.parent.is_dir():
            raise ArchsmithError(f"--storage: no directory {str(path.parent)!r} for the journal")
        try:
            backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
            return JournalStorage(backend)
        except (OSError, ValueError) as err:
            raise ArchsmithError(f"--storage: cannot open journal {str(path)!r}: {err}") from None
    if "://" not in url:
        raise ArchsmithError(
            f"--storage: {url!r} is neither an SQLAlchemy URL (postgresql://...) nor journal:PATH"
        )
    try:
        # a dead server should fail in seconds, not after the driver's minutes-long default
        connect_args = {"connect_timeout": 10} if url.startswith("postgresql") else {}
        return RDBStorage(
            url,
            engine_kwargs={"pool_pre_ping": True, "connect_args": connect_args},
            skip_table_creation=False,
        )
    except Exception as err:  # SQLAlchemy's errors differ by driver; any of them ends the run
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ArchsmithError(f"--storage: cannot reach {_redact(url)}: {first}") from None


def describe_storage(url: str) -> str:
    """The storage for people (a password in a URL is hidden)."""
    return url.removeprefix("journal:") if url.startswith("journal:") else _redact(url)


def load_study(url: str, study_name: str) -> optuna.Study:
    """The existing study ``study_name`` in ``url``; a missing one is one line."""
    storage = open_storage(url)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise ArchsmithError(
            f"no search study {study_name!r} in {describe_storage(url)} (nothing to resume or report)"
        ) from None


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url
