"""Apply the SQL migrations in order, once each, under an advisory lock.

Safe to run twice and concurrently (every receiver and retry pod of the chart runs it as an init
container, and a developer's `tenrusl migrate` may race them): the second runner waits for the
lock, then finds nothing left to do. ``--wait SECONDS`` keeps trying to connect while the
database is still starting (the chart's bundled PostgreSQL comes up beside the first pods).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any

import psycopg

from tenrusl import sql
from tenrusl.constants import MIGRATION_LOCK_KEY
from tenrusl.db import Connection, connect
from tenrusl.errors import DatabaseUnavailable
from tenrusl.logs import configure_logging
from tenrusl.settings import Settings

log = logging.getLogger("tenrusl.migrate")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


async def apply_migrations(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """Apply what is missing on ``conn`` (an autocommit connection); return the versions applied."""
    applied: list[str] = []
    lock = {"key": MIGRATION_LOCK_KEY}
    await conn.execute(sql.queries["migration_lock"], lock)
    try:
        await conn.execute(_LEDGER)
        cur = await conn.execute(sql.queries["applied_migrations"])
        done = {row["version"] if isinstance(row, dict) else row[0] for row in await cur.fetchall()}
        for version, text in sql.migrations():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(text)
                await conn.execute(sql.queries["record_migration"], {"version": version})
            log.info("migration applied", extra={"action": "migrate", "version": version})
            applied.append(version)
    finally:
        await conn.execute(sql.queries["migration_unlock"], lock)
    return applied


def latest_version() -> str:
    return sql.migrations()[-1][0]


# Between connection attempts while waiting for the database: short at first, then every 2 s.
WAIT_STEP_S = (0.25, 0.5, 1.0, 2.0)


async def connect_waiting(settings: Settings, wait_s: float) -> Connection:
    """Connect, trying again for up to ``wait_s`` seconds while the database is unavailable."""
    deadline = time.monotonic() + wait_s
    attempt = 0
    while True:
        try:
            return await connect(settings)
        except DatabaseUnavailable as exc:
            pause = WAIT_STEP_S[min(attempt, len(WAIT_STEP_S) - 1)]
            if time.monotonic() + pause > deadline:
                raise
            if attempt == 0:
                log.info("waiting for the database: %s", exc, extra={"action": "migrate_wait"})
            attempt += 1
            await asyncio.sleep(pause)


async def migrate(settings: Settings, wait_s: float = 0.0) -> list[str]:
    conn = await connect_waiting(settings, wait_s)
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()


def _run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_level)
    applied = asyncio.run(migrate(settings, wait_s=args.wait))  # DatabaseUnavailable: `tenrusl` exits 1
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
