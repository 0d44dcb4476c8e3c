"""The real image, built with podman, and containers of it on the host network.

Containers reach the test PostgreSQL through a loopback TCP proxy (``tests/tcp_proxy.py``), so an
embedded server on a Unix socket works too, and a test can hold the database back. Every
container gets a unique name and is removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import psycopg
import pytest

from tenrusl.embedded import free_port
from tests.conftest import MOCK_SECRET, with_database
from tests.tcp_proxy import TcpProxy
from tests.tools import PODMAN, ULIMITS, ensure, require_podman


@pytest.fixture(scope="session")
def image() -> str:
    """localhost/tenrusl:test, built from ./Dockerfile (podman's layer cache makes a rebuild quick)."""
    require_podman()
    return ensure("image")


@pytest.fixture(scope="session")
def operator_image() -> str:
    """localhost/tenrusl-operator:test, the Dockerfile's `operator` target (the Kubernetes client added)."""
    require_podman()
    return ensure("operator-image")


async def podman(*args: str, limit_s: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = await asyncio.to_thread(
        subprocess.run, [*PODMAN, *args], capture_output=True, text=True, timeout=limit_s
    )
    if check:
        assert done.returncode == 0, f"podman {' '.join(args)}:\n{done.stderr[-3000:]}"
    return done


@dataclass
class Container:
    name: str

    async def logs(self) -> str:
        done = await podman("logs", self.name, check=False)
        return done.stdout + done.stderr

    async def state(self) -> dict[str, Any]:
        import json

        done = await podman("inspect", "--format", "{{json .State}}", self.name)
        return json.loads(done.stdout)

    async def signal(self, sig: str = "TERM") -> None:
        await podman("kill", "--signal", sig, self.name)

    async def wait(self, within: float) -> int:
        """The exit code, waiting at most ``within`` seconds (then the test fails)."""
        done = await podman("wait", self.name, limit_s=within, check=False)
        assert done.returncode == 0, done.stderr
        return int(done.stdout.strip().splitlines()[-1])


@dataclass
class Containers:
    image: str
    started: list[Container] = field(default_factory=list)

    async def start(
        self, *command: str, env: dict[str, str] | None = None, opts: tuple[str, ...] = ()
    ) -> Container:
        """A detached container of the image: host network, read-only root, /tmp a tmpfs."""
        name = f"tenrusl-test-{uuid.uuid4().hex[:10]}"
        env_args = [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")]
        await podman(
            "run", "-d", "--name", name, "--network=host", "--read-only", "--tmpfs", "/tmp",
            *ULIMITS, *env_args, *opts, self.image, *command,
        )  # fmt: skip
        container = Container(name)
        self.started.append(container)
        return container

    async def run(
        self, *command: str, env: dict[str, str] | None = None, limit_s: float = 120
    ) -> tuple[int, str]:
        """Run to completion; the exit code and the output."""
        container = await self.start(*command, env=env)
        code = await container.wait(limit_s)
        return code, await container.logs()


@pytest.fixture
async def containers(image: str) -> AsyncIterator[Containers]:
    pool = Containers(image)
    yield pool
    for container in pool.started:
        await podman("rm", "--force", "--time", "0", container.name, check=False)


@pytest.fixture
async def operator_containers(operator_image: str) -> AsyncIterator[Containers]:
    pool = Containers(operator_image)
    yield pool
    for container in pool.started:
        await podman("rm", "--force", "--time", "0", container.name, check=False)


@contextlib.asynccontextmanager
async def reachable_from_containers(url: str) -> AsyncIterator[str]:
    """``url`` through a loopback TCP proxy: what a container on the host network connects to."""
    proxy = TcpProxy(url)
    await proxy.start()
    try:
        yield proxy.url
    finally:
        await proxy.stop()


@pytest.fixture
async def proxied_db_url(db_url: str) -> AsyncIterator[str]:
    """The test's migrated database, for containers."""
    async with reachable_from_containers(db_url) as url:
        yield url


@pytest.fixture
async def proxied_empty_db_url(empty_db_url: str) -> AsyncIterator[str]:
    """An empty database (a migrate init container migrates it), for containers."""
    async with reachable_from_containers(empty_db_url) as url:
        yield url


@pytest.fixture
def empty_db_url(pg_server_url: str) -> Any:
    """A new, empty (unmigrated) database, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield with_database(pg_server_url, name)
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_env(database_url: str, port: int | None = None, **extra: str) -> dict[str, str]:
    env = {
        "TENRUSL_ENV": "test",
        "TENRUSL_DATABASE_URL": database_url,
        "TENRUSL_MOCK_SECRET": MOCK_SECRET,
        "TENRUSL_DB_POOL_MIN": "1",
        "TENRUSL_DB_POOL_MAX": "4",
        "TENRUSL_DB_CONNECT_TIMEOUT_SECONDS": "1",
        "TENRUSL_HOST": "127.0.0.1",
        # The image listens on two ports; on the host network the admin one must be free too.
        "TENRUSL_ADMIN_PORT": str(free_port()),
        **extra,
    }
    if port:
        env["TENRUSL_PORT"] = str(port)
    return env


async def http_status(url: str) -> int | None:
    """The status of GET url, or None when nothing answers."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, timeout=aiohttp.ClientTimeout(total=3)) as r,
        ):
            return r.status
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    """Poll ``check`` every 0.2 s until it is true; fail after ``within`` seconds (a generous bound)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.2)
