"""Migrations: idempotent, safe concurrently, and in step with the Python constants."""

from __future__ import annotations

import asyncio
import re

import psycopg

from tenrusl import constants
from tenrusl.db import Connection
from tenrusl.migrate import apply_migrations, latest_version


async def connect(url: str) -> Connection:
    return await psycopg.AsyncConnection.connect(url, autocommit=True, row_factory=psycopg.rows.dict_row)


async def test_migrations_run_once_even_when_started_twice_at_once(pg_server_url):
    import uuid

    from tests.conftest import with_database

    name = f"t_mig_{uuid.uuid4().hex[:8]}"
    async with await connect(pg_server_url) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = with_database(pg_server_url, name)
        a, b = await connect(url), await connect(url)
        applied = await asyncio.gather(apply_migrations(a), apply_migrations(b))
        assert sorted(applied, key=len) == [[], [v for v, _ in __import__("tenrusl.sql").sql.migrations()]]
        assert await apply_migrations(a) == []
        row = await (
            await a.execute("SELECT max(version) AS v, count(*) AS n FROM schema_migrations")
        ).fetchone()
        assert row["v"] == latest_version()
        await a.close()
        await b.close()
    finally:
        async with await connect(pg_server_url) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def check_values(db, table: str, column: str) -> set[str]:
    rows = await (
        await db.execute(
            "SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'c'",
            (table,),
        )
    ).fetchall()
    for row in rows:
        if re.search(rf"(?<![a-z_]){column} = ANY", row["def"]):
            return set(re.findall(r"'([a-z_]+)'::text", row["def"]))
    raise AssertionError(f"no CHECK constraint on {table}.{column}")


async def test_status_checks_equal_the_python_constants(db):
    assert await check_values(db, "webhook_events", "status") == set(constants.EVENT_STATES)
    assert await check_values(db, "payments", "status") == set(constants.PAYMENT_STATUSES)
    assert await check_values(db, "retry_runs", "outcome") == set(constants.RUN_OUTCOMES)


async def test_claim_index_covers_exactly_the_retryable_states(db):
    row = await (
        await db.execute("SELECT pg_get_indexdef('webhook_events_due_idx'::regclass) AS def")
    ).fetchone()
    assert set(re.findall(r"'([a-z_]+)'::text", row["def"])) == set(constants.RETRYABLE_EVENT_STATES)
