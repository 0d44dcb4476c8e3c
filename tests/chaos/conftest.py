"""Fixtures for the chaos tests: private servers for the session, a fresh database per test.

The servers are the session's own (tests/chaos/servers.py), never TENRUSL_TEST_DATABASE_URL /
TENRUSL_TEST_REDIS_URL: these tests stop and restart them. A test that leaves one stopped does
not break the next: ``chaos`` starts whatever is down before each test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from tenrusl.db import Connection
from tenrusl.migrate import apply_migrations
from tests.chaos.servers import PrivatePostgres, PrivateRedis, ReceiverProcess
from tests.conftest import ADMIN_KEY, MOCK_SECRET

TEMPLATE = "chaos_template"


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{TEMPLATE}"')

        async def migrate() -> None:
            async with await psycopg.AsyncConnection.connect(server.url(TEMPLATE), autocommit=True) as c:
                await apply_migrations(c)

        asyncio.run(migrate())
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.close()


@dataclass
class Chaos:
    """One test's world: its own database on the private PostgreSQL, the private Redis."""

    postgres: PrivatePostgres
    redis: PrivateRedis
    database_url: str
    logs: Path
    receivers: list[ReceiverProcess]

    def receiver_env(self, **extra: str) -> dict[str, str]:
        return {
            "TENRUSL_ENV": "test",
            "TENRUSL_DATABASE_URL": self.database_url,
            "TENRUSL_REDIS_URL": self.redis.url,
            "TENRUSL_ADMIN_KEY": ADMIN_KEY,
            "TENRUSL_MOCK_SECRET": MOCK_SECRET,
            "TENRUSL_LOG_LEVEL": "WARNING",
            "TENRUSL_DB_POOL_MIN": "2",
            "TENRUSL_DB_POOL_MAX": "8",
            "TENRUSL_DB_CONNECT_TIMEOUT_SECONDS": "2",
            "TENRUSL_RETRY_AFTER_SECONDS": "1",
            # The load is one client; the rate-limit test sets its own limits.
            "TENRUSL_RATE_WEBHOOKS_PER_SECOND": "1000000",
            "TENRUSL_RATE_WEBHOOKS_PER_MINUTE": "100000000",
            **extra,
        }

    def receiver(self, **extra: str) -> ReceiverProcess:
        """A receiver process (not started) on this test's database; closed after the test."""
        process = ReceiverProcess(
            self.receiver_env(**extra), self.logs / f"receiver-{len(self.receivers)}.log"
        )
        self.receivers.append(process)
        return process

    async def start_receiver(self, **extra: str) -> ReceiverProcess:
        process = self.receiver(**extra)
        await asyncio.to_thread(process.start)
        return process

    async def connect(self) -> Connection:
        return await psycopg.AsyncConnection.connect(self.database_url, autocommit=True, row_factory=dict_row)

    async def stored_event_ids(self, provider: str = "mock") -> list[str]:
        """Every stored event id of ``provider`` (a list: a duplicate row would show twice)."""
        async with await self.connect() as conn:
            cur = await conn.execute("SELECT event_id FROM webhook_events WHERE provider = %s", (provider,))
            return [row["event_id"] for row in await cur.fetchall()]


@pytest.fixture
async def chaos(
    private_postgres: PrivatePostgres, private_redis: PrivateRedis, tmp_path: Path
) -> AsyncIterator[Chaos]:
    if not private_postgres.running:
        await asyncio.to_thread(private_postgres.start)
    if not private_redis.running:
        await asyncio.to_thread(private_redis.start)
    await asyncio.to_thread(private_redis.flush)
    name = f"chaos_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(private_postgres.url(), autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    world = Chaos(private_postgres, private_redis, private_postgres.url(name), tmp_path, [])
    try:
        yield world
    finally:
        for process in world.receivers:
            await asyncio.to_thread(process.close)


def log_tails(chaos: Chaos) -> Callable[[], str]:
    """For assertion messages: the end of every receiver log of the test."""
    from tests.chaos.servers import tail

    return lambda: "\n".join(f"--- {p.log.name}\n{tail(p.log)}" for p in chaos.receivers)
