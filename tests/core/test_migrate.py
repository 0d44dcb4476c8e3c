"""`tenrusl migrate` on a busy production database: no statement timeout for DDL, a short lock
timeout with bounded retries (each migration in its own transaction), and a refused login named in
the server's words at once, never the password."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tenrusl.db import Connection, connect, is_auth_failure, server_message
from tenrusl.migrate import MigrationLockTimeout, MigrationOptions, apply_migrations
from tenrusl.settings import Settings

SLOW = ("9001_slow", "SELECT pg_sleep(0.3); CREATE TABLE slow_done (x int)")
ALTER = ("9002_alter", "ALTER TABLE lock_target ADD COLUMN added int")


@pytest.fixture
async def target(db: Connection) -> AsyncIterator[Connection]:
    await db.execute("CREATE TABLE lock_target (x int)")
    yield db


async def applied(db: Connection, version: str) -> bool:
    row = await (
        await db.execute("SELECT count(*) AS n FROM schema_migrations WHERE version = %s", (version,))
    ).fetchone()
    return bool(row and row["n"])


async def test_ddl_runs_without_the_apps_statement_timeout(make_settings, db: Connection) -> None:
    settings = make_settings(TENRUSL_DB_STATEMENT_TIMEOUT_MS="50")
    conn = await connect(settings)
    try:
        with pytest.raises(psycopg.errors.QueryCanceled):  # the app's own sessions keep their timeout
            await conn.execute("SELECT pg_sleep(0.3)")
        assert await apply_migrations(conn, MigrationOptions.from_settings(settings), migrations=[SLOW]) == [
            SLOW[0]
        ]
    finally:
        await conn.close()
    assert await applied(db, SLOW[0])
    assert await (await db.execute("SELECT to_regclass('slow_done') IS NOT NULL AS t")).fetchone() == {
        "t": True
    }


async def test_a_migration_gives_way_to_a_long_transaction_and_retries_until_it_ends(
    make_settings, target: Connection, db_url: str
) -> None:
    blocker = await psycopg.AsyncConnection.connect(db_url)
    await blocker.execute("BEGIN")
    await blocker.execute("LOCK TABLE lock_target IN ACCESS SHARE MODE")  # a long report, say
    pauses: list[float] = []
    readers_waited: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        # Between tries nothing is queued on the table: a reader is served at once.
        started = time.monotonic()
        await target.execute("SELECT count(*) FROM lock_target")
        readers_waited.append(time.monotonic() - started)
        if len(pauses) == 2:
            await blocker.execute("COMMIT")  # the long transaction ends

    settings = make_settings(TENRUSL_MIGRATE_LOCK_TIMEOUT_MS="100", TENRUSL_MIGRATE_LOCK_RETRIES="5")
    conn = await connect(settings)
    try:
        done = await apply_migrations(
            conn, MigrationOptions.from_settings(settings), migrations=[ALTER], sleep=sleep
        )
    finally:
        await conn.close()
        await blocker.close()
    assert done == [ALTER[0]] and await applied(target, ALTER[0])
    assert pauses == [1.0, 2.0], "two tries timed out, each followed by a growing pause"
    assert max(readers_waited) < 1.0
    columns = await (
        await target.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'lock_target'"
        )
    ).fetchall()
    assert {c["column_name"] for c in columns} == {"x", "added"}


async def test_a_migration_that_never_gets_its_lock_gives_up_and_leaves_nothing_half_done(
    make_settings, target: Connection, db_url: str
) -> None:
    blocker = await psycopg.AsyncConnection.connect(db_url)
    await blocker.execute("BEGIN")
    await blocker.execute("LOCK TABLE lock_target IN ACCESS SHARE MODE")
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    settings = make_settings(TENRUSL_MIGRATE_LOCK_TIMEOUT_MS="50", TENRUSL_MIGRATE_LOCK_RETRIES="6")
    conn = await connect(settings)
    try:
        with pytest.raises(
            MigrationLockTimeout, match=r"9002_alter could not take its locks within 50 ms in 7 tries"
        ):
            await apply_migrations(
                conn, MigrationOptions.from_settings(settings), migrations=[ALTER], sleep=sleep
            )
    finally:
        await conn.close()
        await blocker.close()
    assert pauses == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0]
    assert not await applied(target, ALTER[0])
    columns = await (
        await target.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'lock_target'"
        )
    ).fetchall()
    assert [c["column_name"] for c in columns] == ["x"]


def test_the_migration_knobs_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {"TENRUSL_MIGRATE_LOCK_TIMEOUT_MS": "1500", "TENRUSL_MIGRATE_LOCK_RETRIES": "3",
         "TENRUSL_MIGRATE_STATEMENT_TIMEOUT_MS": "3600000"}
    )  # fmt: skip
    assert MigrationOptions.from_settings(settings) == MigrationOptions(3600000, 1500, 3)
    assert MigrationOptions.from_settings(Settings.from_env({})) == MigrationOptions(0, 3000, 10)


def with_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}:{password}@{host}", parts.path, parts.query, parts.fragment))


def test_a_refused_login_stops_migrate_at_once_with_the_servers_message_and_never_the_password(
    base_env: dict[str, str], db_url: str
) -> None:
    secret = "sekret-pw-7f3a"
    url = with_user(db_url, "ghost", secret)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-P", "-m", "tenrusl.cli", "migrate", "--wait", "60"],
        env={**os.environ, **base_env, "TENRUSL_DATABASE_URL": url},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert time.monotonic() - started < 20, "a refused login is not waited out like an outage"
    assert 'database authentication failed: role "ghost" does not exist' in done.stderr, done.stderr
    assert secret not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("text", "auth"),
    [
        (
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  password authentication failed for user "tenrusl"',
            True,
        ),
        (
            'connection to server at "db", port 5432 failed: FATAL:  no pg_hba.conf entry for host "10.1.2.3", user "tenrusl", database "tenrusl", no encryption',
            True,
        ),
        ('connection to server at "db", port 5432 failed: FATAL:  database "tenrusl" does not exist', True),
        ('connection to server at "db" (10.0.0.5), port 5432 failed: Connection refused', False),
        ('connection to server at "db", port 5432 failed: FATAL:  the database system is starting up', False),
        ("connection timeout expired", False),
    ],
)
def test_what_counts_as_a_refused_login(text: str, auth: bool) -> None:
    assert is_auth_failure(psycopg.OperationalError(text)) is auth


def test_the_servers_message_never_carries_the_password() -> None:
    url = "postgresql://tenrusl:hunter2-Zq@db:5432/tenrusl"
    exc = psycopg.OperationalError('failed: FATAL:  password authentication failed for user "hunter2-Zq"')
    assert server_message(exc, url) == 'password authentication failed for user "***"'


async def test_ready_names_a_refused_login_with_the_servers_message(
    make_client, make_settings, db_url: str
) -> None:
    secret = "sekret-pw-9b1c"
    settings = make_settings(TENRUSL_DATABASE_URL=with_user(db_url, "ghost", secret))
    client = await make_client(settings)
    answer = await asyncio.wait_for(client.get("/ready"), 30)
    body = await answer.json()
    assert answer.status == 503 and body["error"]["code"] == "database_auth_failed", body
    assert 'role "ghost" does not exist' in body["error"]["message"]
    assert secret not in await answer.text()
