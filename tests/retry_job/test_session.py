"""A run's connections: generic plans and asynchronous commit; the receiver's pool keeps the defaults."""

from __future__ import annotations

import asyncio

from retry_job.cli import _with_store
from tenrusl.db import open_pool
from tenrusl.settings import Settings
from tenrusl.store import Store


async def _session(store: Store) -> tuple[str, str]:
    async with store.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT current_setting('synchronous_commit') AS commit, "
                "current_setting('plan_cache_mode') AS plans"
            )
        ).fetchone()
    assert row is not None
    return row["commit"], row["plans"]


def test_a_run_commits_asynchronously_with_generic_plans(settings: Settings) -> None:
    assert _with_store(settings, _session) == ("off", "force_generic_plan")


def test_the_receivers_pool_keeps_synchronous_commit(settings: Settings) -> None:
    async def receiver_pool() -> tuple[str, str]:
        async with open_pool(settings) as pool:
            return await _session(Store(pool))

    assert asyncio.run(receiver_pool()) == ("on", "auto")
