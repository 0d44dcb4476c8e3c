"""Apply the SQL migrations in order, once each, under an advisory lock.

Safe to run twice and concurrently (every receiver and retry pod of the chart runs it as an init
container, and a developer's `tenrusl migrate` may race them): the second runner waits for the
lock, then finds nothing left to do. ``--wait SECONDS`` keeps trying to connect while the
database is still starting (the chart's bundled PostgreSQL comes up beside the first pods).

Fit for big tables (docs/configuration.md, "Migrations"): the session has no statement timeout
(``TENRUSL_MIGRATE_STATEMENT_TIMEOUT_MS``, default none), so an index build on a large table is
never cancelled halfway; each migration runs in its own transaction with a short lock timeout
(``TENRUSL_MIGRATE_LOCK_TIMEOUT_MS``), so DDL that must wait behind a long transaction gives up
its place in the lock queue (where it would block every query after it) and tries again later,
at most ``TENRUSL_MIGRATE_LOCK_RETRIES`` times.

Before anything else it refuses a database whose schema no longer serves this version
(:mod:`tenrusl.compat`), and a login the server refused is reported in the server's words at once
instead of being waited out.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from tenrusl import __version__, sql
from tenrusl.compat import Compatibility, require_compatible
from tenrusl.constants import MIGRATION_LOCK_KEY
from tenrusl.db import Connection, connect
from tenrusl.errors import DatabaseAuthFailed, DatabaseUnavailable
from tenrusl.logs import configure_logging
from tenrusl.settings import Settings

log = logging.getLogger("tenrusl.migrate")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

# Between tries of a migration whose lock timed out: doubling from the first, up to the last.
LOCK_RETRY_PAUSE_S = (1.0, 15.0)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class MigrationOptions:
    """How migrations wait for locks and how long a statement may run (0: no limit)."""

    statement_timeout_ms: int = 0
    lock_timeout_ms: int = 3000
    lock_retries: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> MigrationOptions:
        return cls(
            statement_timeout_ms=settings.migrate_statement_timeout_ms,
            lock_timeout_ms=settings.migrate_lock_timeout_ms,
            lock_retries=settings.migrate_lock_retries,
        )


class MigrationLockTimeout(DatabaseUnavailable):
    """A migration could not take its locks within every try (a long transaction holds them)."""


async def apply_migrations(
    conn: psycopg.AsyncConnection[Any],
    options: MigrationOptions | None = None,
    *,
    migrations: Sequence[tuple[str, str]] | None = None,
    sleep: Sleep = asyncio.sleep,
) -> list[str]:
    """Apply what is missing on ``conn`` (an autocommit connection); return the versions applied."""
    options = options or MigrationOptions()
    applied: list[str] = []
    lock = {"key": MIGRATION_LOCK_KEY}
    await conn.execute(
        sql.queries["migration_statement_timeout"], {"ms": f"{options.statement_timeout_ms}ms"}
    )
    await conn.execute(sql.queries["migration_lock"], lock)
    try:
        await conn.execute(_LEDGER)
        cur = await conn.execute(sql.queries["applied_migrations"])
        done = {row["version"] if isinstance(row, dict) else row[0] for row in await cur.fetchall()}
        for version, text in migrations if migrations is not None else sql.migrations():
            if version in done:
                continue
            await _apply_one(conn, version, text, options, sleep)
            log.info("migration applied", extra={"action": "migrate", "version": version})
            applied.append(version)
    finally:
        await conn.execute(sql.queries["migration_unlock"], lock)
    return applied


async def _apply_one(
    conn: psycopg.AsyncConnection[Any], version: str, text: str, options: MigrationOptions, sleep: Sleep
) -> None:
    """One migration in its own transaction; a lock wait over the timeout rolls back and retries."""
    pause = LOCK_RETRY_PAUSE_S[0]
    for attempt in range(options.lock_retries + 1):
        try:
            async with conn.transaction():
                await conn.execute(
                    sql.queries["migration_lock_timeout"], {"ms": f"{options.lock_timeout_ms}ms"}
                )
                await conn.execute(text)
                await conn.execute(sql.queries["record_migration"], {"version": version})
            return
        except psycopg.errors.LockNotAvailable:
            if attempt == options.lock_retries:
                raise MigrationLockTimeout(
                    f"migration {version} could not take its locks within {options.lock_timeout_ms} ms "
                    f"in {attempt + 1} tries: a long transaction holds a table it changes (see "
                    'docs/RUNBOOK.md, "A migration waits for a lock"); nothing of it was applied'
                ) from None
            log.warning(
                "migration waited too long for a lock; rolled back, trying again",
                extra={"action": "migrate_lock_wait", "version": version, "attempt": attempt + 1,
                       "lock_timeout_ms": options.lock_timeout_ms, "pause_s": pause},
            )  # fmt: skip
            await sleep(pause)
            pause = min(pause * 2, LOCK_RETRY_PAUSE_S[1])


async def compatibility(conn: psycopg.AsyncConnection[Any]) -> Compatibility:
    """What the schema serves (None before migration 0013; an empty database serves everyone)."""
    cur = await conn.execute(sql.queries["compatibility_table_present"])
    present = await cur.fetchone()
    if not present or not (present["present"] if isinstance(present, dict) else present[0]):
        return Compatibility(None)
    row = await (await conn.execute(sql.queries["oldest_code_version"])).fetchone()
    if row is None:
        return Compatibility(None)
    if isinstance(row, dict):
        return Compatibility(row["oldest_code_version"], row["set_by"])
    return Compatibility(row[0], row[1])


def latest_version() -> str:
    return sql.migrations()[-1][0]


# Between connection attempts while waiting for the database: short at first, then every 2 s.
WAIT_STEP_S = (0.25, 0.5, 1.0, 2.0)


async def connect_waiting(settings: Settings, wait_s: float) -> Connection:
    """Connect, trying again for up to ``wait_s`` seconds while the database is unavailable.

    A refused login is not waited out: the server answered, and will answer the same until the
    password (in the Secret or in the database) is fixed.
    """
    deadline = time.monotonic() + wait_s
    attempt = 0
    while True:
        try:
            return await connect(settings)
        except DatabaseAuthFailed as exc:
            log.error(str(exc), extra={"action": "migrate_auth_failed"})
            raise
        except DatabaseUnavailable as exc:
            pause = WAIT_STEP_S[min(attempt, len(WAIT_STEP_S) - 1)]
            if time.monotonic() + pause > deadline:
                raise
            if attempt == 0:
                log.info("waiting for the database: %s", exc, extra={"action": "migrate_wait"})
            attempt += 1
            await asyncio.sleep(pause)


async def migrate(settings: Settings, wait_s: float = 0.0) -> list[str]:
    """Refuse a schema that no longer serves this code, then apply what is missing."""
    conn = await connect_waiting(settings, wait_s)
    try:
        require_compatible(await compatibility(conn), __version__)
        return await apply_migrations(conn, MigrationOptions.from_settings(settings))
    finally:
        await conn.close()


def _run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_level)
    # DatabaseUnavailable (auth failures and lock timeouts too) and CodeTooOld: `tenrusl` exits 1.
    applied = asyncio.run(migrate(settings, wait_s=args.wait))
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "migrate", help="apply database migrations (idempotent, safe to run concurrently)"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep trying to connect for this long while the database is unreachable (default 0)",
    )
    parser.set_defaults(handler=_run)
