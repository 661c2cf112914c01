"""A throw-away PostgreSQL server for tests: Debian's ``postgresql`` binaries, run as the
unprivileged ``postgres`` user on a loopback port, in a fresh data directory."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator


def _bin_dir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


def unavailable_reason() -> str | None:
    """Why no server can be started here, or None."""
    if _bin_dir() is None:
        return "PostgreSQL server binaries missing (apt-get install postgresql)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no 'postgres' system user to run the server as (apt-get install postgresql)"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "postgres":
        return "starting a server as the postgres user needs root (runuser)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg missing (pip install 'archsmith[distributed]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Start a server; yields its SQLAlchemy URL; stops it and removes its data afterwards."""
    bin_dir = _bin_dir()
    assert bin_dir is not None
    user = pwd.getpwnam("postgres")
    root = tempfile.mkdtemp(prefix="archsmith-pg-")
    os.chmod(root, 0o755)
    data = os.path.join(root, "data")
    os.mkdir(data)
    os.chown(root, user.pw_uid, user.pw_gid)
    os.chown(data, user.pw_uid, user.pw_gid)
    port = _free_port()

    def as_postgres(*cmd: str) -> None:
        prefix = [] if os.geteuid() == user.pw_uid else ["runuser", "-u", "postgres", "--"]
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    as_postgres(f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "postgres")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root}"
    as_postgres(f"{bin_dir}/pg_ctl", "-D", data, "-o", options, "-w", "-l", f"{root}/log", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            as_postgres(f"{bin_dir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
