"""Redis stopped under load: webhooks keep being accepted and every Redis use falls back.

Redis only shares rate-limit counters and the retry run lock between processes; neither may
stop a webhook from being stored. While it is down the rate limiter counts in-process
(receiver/ratelimit.py: it still enforces its limits, per process) and a retry run takes the
PostgreSQL advisory lock instead (retry_job/lock.py). When Redis returns (empty: it has no
persistence here) both go back to it by themselves: rate-limit keys reappear in Redis once the
limiter's circuit breaker closes, and the next retry run records ``lock_backend = redis``.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys

import aiohttp
import pytest
import redis.asyncio as aioredis

from retry_job.lock import ADVISORY, REDIS
from tests.chaos.conftest import Chaos, log_tails
from tests.chaos.load import SignedLoad, session
from tests.chaos.servers import ReceiverProcess

pytestmark = pytest.mark.chaos

# Unsigned stripe deliveries spend a tiny per-minute quota (the limiter runs before the signature
# check), so the test can see the in-process limiter enforce while Redis is down.
STRIPE_PER_MINUTE = 3
BURST = 8  # more than two windows' worth: at least two are refused even across a minute boundary
RATE_LIMIT_KEYS = "tenrusl:rl:*"
_BACKEND = re.compile(r'^tenrusl_rate_limit_backend\{backend="(\w+)"\} 1\.0$', re.MULTILINE)


async def limiter_backend(client: aiohttp.ClientSession, receiver: ReceiverProcess) -> str:
    async with client.get(receiver.admin_url + "/metrics") as resp:
        found = _BACKEND.findall(await resp.text())
    assert len(found) == 1, found
    return found[0]


async def retry_run(chaos: Chaos, receiver: ReceiverProcess, trigger: str) -> str | None:
    """One real `tenrusl retry run` process; returns the lock backend its retry_runs row records."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-P", "-m", "retry_job", "run", "--max-events", "50", "--trigger", trigger,
        env=receiver.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out, err)
    assert out.decode().startswith("CLAIMED="), out
    async with await chaos.connect() as db:
        cur = await db.execute("SELECT outcome, lock_backend FROM retry_runs WHERE trigger = %s", (trigger,))
        row = await cur.fetchone()
    assert row is not None and row["outcome"] == "completed", row
    return row["lock_backend"]


async def test_redis_stopped_under_load(chaos: Chaos) -> None:
    receiver = await chaos.start_receiver(
        TENRUSL_WEBHOOK_RATE_LIMIT_PROVIDERS_JSON=json.dumps(
            {"stripe": {"per_second": 1000, "per_minute": STRIPE_PER_MINUTE}}
        )
    )
    keys = aioredis.from_url(chaos.redis.url)

    async def rate_limit_keys() -> list[bytes | str]:
        return await keys.keys(RATE_LIMIT_KEYS)

    load = SignedLoad(receiver.url, prefix="evt_redis", concurrency=16)
    async with load, session(4) as client:
        # Redis up: counters in Redis, the run lock in Redis.
        await load.until(lambda: len(load.acknowledged) >= 100, 30, "the warm-up")
        assert await rate_limit_keys()
        assert await limiter_backend(client, receiver) == "redis"
        assert await retry_run(chaos, receiver, "chaos-redis-up") == REDIS

        # Redis down: deliveries still accepted; limiter in-process; run lock in PostgreSQL.
        await asyncio.to_thread(chaos.redis.stop)
        await keys.aclose()
        down_from = len(load.answers)
        await load.until(lambda: len(load.answers) >= down_from + 200, 30, "deliveries while Redis is down")
        assert await limiter_backend(client, receiver) == "local"
        burst = []
        for _ in range(BURST):
            async with client.post(
                receiver.url + "/api/v1/webhooks/stripe", data=b'{"id": "evt_unsigned"}',
                headers={"Content-Type": "application/json"},
            ) as resp:  # fmt: skip
                burst.append(resp.status)
        assert set(burst) == {401, 429} and burst.count(429) >= BURST - 2 * STRIPE_PER_MINUTE, burst
        assert await retry_run(chaos, receiver, "chaos-redis-down") == ADVISORY
        down_until = len(load.answers)

        # Redis back (empty): the limiter returns to it once its breaker closes; so does the lock.
        await asyncio.to_thread(chaos.redis.start)
        keys = aioredis.from_url(chaos.redis.url)
        for _ in range(300):
            if await rate_limit_keys():
                break
            await asyncio.sleep(0.05)
        assert await rate_limit_keys(), "the rate limiter did not return to Redis within 15 s"
        assert await limiter_backend(client, receiver) == "redis"
        assert await retry_run(chaos, receiver, "chaos-redis-back") == REDIS
    await keys.aclose()

    report = f"{load.summary()}; during the outage: {dict(load.statuses(load.answers[down_from:down_until]))}"
    print(report, f"stripe burst while Redis was down: {burst}")
    assert set(load.statuses()) == {202}, f"{report}\n{log_tails(chaos)()}"
    assert "rate_limit_fallback" in receiver.log.read_text()  # the fallback was logged once
    stored = set(await chaos.stored_event_ids())
    assert not sorted(load.acknowledged - stored), report
