"""Apply the SQL migrations in order, once each, under an advisory lock.

Safe to run twice and concurrently (the chart's pre-upgrade hook and a developer's `tenrusl
migrate` may race): the second runner waits for the lock, then finds nothing left to do.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

import psycopg

from tenrusl import sql
from tenrusl.constants import MIGRATION_LOCK_KEY
from tenrusl.db import connect
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


async def migrate(settings: Settings) -> list[str]:
    conn = await connect(settings)
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()


def _run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging(settings.log_level)
    applied = asyncio.run(migrate(settings))  # DatabaseUnavailable: `tenrusl` exits 1
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "migrate", help="apply database migrations (idempotent, safe to run concurrently)"
    )
    parser.set_defaults(handler=_run)
