"""Two runners at once over 10,000 due events: every event claimed exactly once, none lost."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from retry_job.backoff import Backoff
from retry_job.policy import resolve_policy
from retry_job.runner import Runner, RunOptions
from tenrusl.db import Connection, open_pool
from tenrusl.settings import Settings
from tenrusl.store import Store
from tests.conftest import fetch_row
from tests.retry_job.conftest import seed_many

EVENTS = 10_000


@pytest.mark.slow
async def test_two_runners_claim_each_event_exactly_once(db: Connection, no_redis_settings: Settings) -> None:
    await seed_many(db, EVENTS)
    settings = no_redis_settings.replace(db_pool_min=1, db_pool_max=2)
    policy = resolve_policy(settings)
    claims: list[list[str]] = [[], []]
    start = asyncio.Event()

    async def runner(slot: int) -> None:
        # The run loop minus the run lock, which would (rightly) keep the second one out:
        # this tests the claim statement itself, on separate connections.
        async with open_pool(settings) as pool:
            store = Store(pool)
            worker = Runner(settings, store, RunOptions(trigger=f"test-{slot}"))
            backoff = Backoff.from_policy(policy)
            await start.wait()
            while batch := await store.claim_due_events(
                limit=policy.limit, lease_seconds=policy.lease_seconds, max_attempts=policy.max_attempts
            ):
                claims[slot].extend(e.id for e in batch)
                for event in batch:
                    assert await worker.process(event, policy, backoff) == "ok"

    tasks = [asyncio.create_task(runner(0)), asyncio.create_task(runner(1))]
    await asyncio.sleep(0.5)
    start.set()
    await asyncio.gather(*tasks)

    counts = Counter(claims[0] + claims[1])
    assert len(counts) == EVENTS  # none lost
    assert set(counts.values()) == {1}  # none claimed twice
    assert claims[0] and claims[1]  # both really ran
    row = await fetch_row(
        db,
        "SELECT count(*) FILTER (WHERE status = 'processed' AND attempts = 2) AS done, count(*) AS total "
        "FROM webhook_events",
    )
    assert (row["done"], row["total"]) == (EVENTS, EVENTS)


async def test_two_full_runs_at_once_one_is_busy(db: Connection, no_redis_settings: Settings) -> None:
    await seed_many(db, 300)
    settings = no_redis_settings.replace(db_pool_min=1, db_pool_max=2)
    async with open_pool(settings) as pool_a, open_pool(settings) as pool_b:
        a, b = await asyncio.gather(
            Runner(settings, Store(pool_a)).run(), Runner(settings, Store(pool_b)).run()
        )
    outcomes = sorted([a.outcome, b.outcome])
    assert outcomes in (["busy", "completed"], ["completed", "completed"])
    assert a.claimed + b.claimed == 300
