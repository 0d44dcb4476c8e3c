"""The run lock: Redis with compare-and-delete, and the advisory lock when Redis is down."""

from __future__ import annotations

from pathlib import Path

import redis.asyncio as aioredis

from retry_job.lock import ADVISORY, REDIS, REDIS_LOCK_KEY, RunLock, force_unlock
from retry_job.runner import Runner
from tenrusl.db import Connection
from tenrusl.embedded import start_redis
from tenrusl.settings import Settings
from tenrusl.store import Store
from tests.conftest import fetch_row
from tests.retry_job.conftest import Seed


async def test_redis_lock_is_exclusive_and_released_only_by_its_owner(
    settings: Settings, redis_client: aioredis.Redis
) -> None:
    first, second = RunLock(settings, "run-a"), RunLock(settings, "run-b")
    assert await first.acquire() == REDIS
    assert await second.acquire() is None
    assert 0 < await redis_client.pttl(REDIS_LOCK_KEY) <= 60_000
    # The key changed hands (our TTL lapsed, another run took it): releasing must not free it.
    await redis_client.set(REDIS_LOCK_KEY, "run-c")
    await first.release()
    assert await redis_client.get(REDIS_LOCK_KEY) == b"run-c"
    assert await force_unlock(settings) == "run-c"
    assert await redis_client.get(REDIS_LOCK_KEY) is None
    assert await second.acquire() == REDIS
    await second.release()
    assert await redis_client.get(REDIS_LOCK_KEY) is None


async def test_with_redis_stopped_the_advisory_lock_is_used(
    make_settings, store: Store, seed: Seed, db: Connection, tmp_path: Path
) -> None:
    private = start_redis(tmp_path / "redis")
    settings = make_settings(TENRUSL_REDIS_URL=private.url)
    probe = aioredis.from_url(private.url)
    assert await probe.ping()
    await probe.aclose()
    private.stop()  # Redis down for the rest of the test

    first, second = RunLock(settings, "run-a"), RunLock(settings, "run-b")
    assert await first.acquire() == ADVISORY
    assert await second.acquire() is None  # the advisory lock is exclusive too
    await first.release()
    assert await second.acquire() == ADVISORY
    await second.release()

    await seed(ref="pay-1", payment=True)
    result = await Runner(settings, store).run()
    assert (result.outcome, result.exit_code, result.lock_backend) == ("completed", 0, ADVISORY)
    assert result.summary == "CLAIMED=1 OK=1 FAIL=0 DEAD=0"
    row = await fetch_row(db, "SELECT lock_backend FROM retry_runs")
    assert row["lock_backend"] == "pg_advisory"
    # Advisory locks on this test's database only: other tests (and other checkouts) share the server.
    locks = await fetch_row(
        db,
        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    assert locks["n"] == 0  # released with its session
