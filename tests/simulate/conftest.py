"""A sandbox for the third-party APIs, and settings that point a receiver at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from receiver.simulate.sandbox import SandboxKeys, dev_env, sandbox_app
from tenrusl.settings import Settings


@pytest.fixture(scope="session")
def sandbox_keys() -> SandboxKeys:
    return SandboxKeys.generate()  # RSA generation is slow-ish: once per session


@pytest.fixture
async def sandbox_url(sandbox_keys: SandboxKeys) -> AsyncIterator[str]:
    server = TestServer(sandbox_app(sandbox_keys))
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
def sim_settings(
    make_settings: Callable[..., Settings], sandbox_url: str, sandbox_keys: SandboxKeys, redis_client: Any
) -> Callable[..., Settings]:
    """Receiver (and simulator) settings: every provider's secret, the sandbox, no rate limit.

    ``redis_client`` flushes Redis, so no earlier test's rate-limit counters leak in.
    """

    def factory(**env: str) -> Settings:
        limits = {"TENRUSL_RATE_WEBHOOKS_PER_SECOND": "100000", "TENRUSL_RATE_WEBHOOKS_PER_MINUTE": "1000000"}
        return make_settings(**{**dev_env(sandbox_url, sandbox_keys), **limits, **env})

    return factory


def receiver_url(client: Any) -> str:
    return str(client.make_url("")).rstrip("/")
