"""The one database pool, and the errors that mean "the database is not there".

Connections are autocommit: a single statement (the webhook ingest is one function call) is its
own transaction, which saves the COMMIT round trip (on this project's 2-core machine, about 5,200
instead of 3,600 single-insert webhooks/s: docs/design-notes.md, "Round trips"). Multi-statement
work opens ``conn.transaction()`` explicitly. Rows are dicts (:data:`Connection`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from tenrusl.errors import DatabaseAuthFailed, DatabaseUnavailable
from tenrusl.providers import rules_fingerprint
from tenrusl.settings import Settings

log = logging.getLogger("tenrusl.db")

# Every connection TenRusl opens returns rows as dicts, so rows are typed ``DictRow``.
Connection = psycopg.AsyncConnection[DictRow]
Pool = AsyncConnectionPool[Connection]

# Errors that mean the database (or the path to it) is unavailable, not that our SQL is wrong.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg.errors.AdminShutdown,
    psycopg.errors.CannotConnectNow,
    psycopg.errors.QueryCanceled,
    PoolTimeout,
    OSError,
)

# The kinds of database error counted by the receiver (tenrusl_db_errors_total{kind}).
DB_ERROR_KINDS = ("unavailable", "timeout", "other")


def error_kind(exc: BaseException) -> str:
    """``timeout``: a statement or lock wait was cancelled (the database is slow);
    ``unavailable``: no usable connection (refused, dropped, or none free within the wait);
    ``other``: any other database error (a bug, a constraint)."""
    if isinstance(exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
        return "timeout"
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return "unavailable"
    return "other"


# Words of the server's FATAL answer when it refused who we are or how we proved it (PostgreSQL
# sends no SQLSTATE to a client it did not let in, so libpq's text is all there is).
_AUTH_WORDS = (
    "authentication failed",
    "no pg_hba.conf entry",
    "does not exist",  # the role, or the database, named in the URL
    "permission denied for database",
    "password is required",
    "certificate",
)


def server_message(exc: BaseException, url: str | None = None) -> str:
    """The server's own words from a connection error, on one line, with the password removed.

    libpq reports ``connection to server at "HOST", port N failed: FATAL:  <message>``; the part
    after ``FATAL:`` is what the server said. The URL's password is cut out wherever it appears.
    """
    text = " ".join(str(exc).split())
    if "FATAL:" in text:
        text = text.split("FATAL:", 1)[1].strip()
    password = _password(url)
    if password:
        text = text.replace(password, "***")
    return text[:300]


def is_auth_failure(exc: BaseException) -> bool:
    """Whether a connection error says the server refused our credentials (not that it is away)."""
    text = str(exc)
    return "FATAL:" in text and any(word in text for word in _AUTH_WORDS)


def connect_error(exc: BaseException, url: str | None) -> DatabaseUnavailable:
    """The core's error for a failed connection: an authentication failure names itself."""
    if is_auth_failure(exc):
        return DatabaseAuthFailed(f"database authentication failed: {server_message(exc, url)}")
    return DatabaseUnavailable(f"cannot connect to the database: {exc.__class__.__name__}")


def _password(url: str | None) -> str | None:
    if not url:
        return None
    try:
        conninfo = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return None
    password = conninfo.get("password")
    return str(password) if password else None


def connection_kwargs(settings: Settings, *, session: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Everything but the row factory, which both callers pass typed (dict rows).

    ``tenrusl.extraction_rules`` is this process's provider-rules fingerprint: an event the
    receiver stores records it (the column default of migration 0010), so the retry runner knows
    whether the stored payment fields were read by its own rules. ``session``: more settings for
    every connection of this pool (the retry runner's: retry_job/cli.py, RUNNER_SESSION).
    """
    options = (
        f"-c statement_timeout={settings.db_statement_timeout_ms} -c TimeZone=UTC"
        f" -c tenrusl.extraction_rules={rules_fingerprint()}"
    )
    for name, value in (session or {}).items():
        options += f" -c {name}={value}"
    return {
        "autocommit": True,
        "connect_timeout": max(1, int(settings.db_connect_timeout_s)),
        "options": options,
        "application_name": "tenrusl",
    }


def require_url(settings: Settings) -> str:
    if not settings.database_url:
        from tenrusl.settings import SettingsError

        raise SettingsError(
            "TENRUSL_DATABASE_URL is not set (for example postgresql://user@127.0.0.1:5432/tenrusl); "
            "`tenrusl dev` starts an embedded PostgreSQL when it is unset"
        )
    return settings.database_url


def create_pool(settings: Settings, *, session: Mapping[str, str] | None = None) -> Pool:
    """A closed pool; open it with ``await pool.open()``. It reconnects by itself after an outage."""
    return AsyncConnectionPool(
        require_url(settings),
        connection_class=Connection,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        kwargs={**connection_kwargs(settings, session=session), "row_factory": dict_row},
        open=False,
        timeout=settings.db_connect_timeout_s,
        # 0: a failed connection attempt is retried once at once, then dropped, instead of
        # psycopg_pool's timed back-off (1, 2, 4, ... s), whose growing gaps would leave the pool
        # disconnected long after the database is back. The next request that finds no free
        # connection starts a new attempt, so the pool reconnects by itself with the first
        # request after the outage; requests already waiting start none and wait out `timeout`
        # (then 503), so 503s can outlast the outage by at most TENRUSL_DB_CONNECT_TIMEOUT_SECONDS
        # (tests/chaos/test_postgres_restart.py measures it).
        reconnect_timeout=0,
        name="tenrusl",
    )


@asynccontextmanager
async def open_pool(settings: Settings, *, session: Mapping[str, str] | None = None) -> AsyncIterator[Pool]:
    """Open the pool without waiting for the database, so a process can start during an outage."""
    pool = create_pool(settings, session=session)
    await pool.open(wait=False)
    try:
        yield pool
    finally:
        await pool.close()


async def connect(settings: Settings) -> Connection:
    """One direct connection (migrations, CLI tools).

    Raises :class:`DatabaseAuthFailed` (with the server's message) when the server refused the
    credentials, :class:`DatabaseUnavailable` when it is unreachable.
    """
    url = require_url(settings)
    try:
        return await psycopg.AsyncConnection.connect(url, row_factory=dict_row, **connection_kwargs(settings))
    except UNAVAILABLE_ERRORS as exc:
        raise connect_error(exc, url) from exc
