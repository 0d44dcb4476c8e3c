"""A run's connections: generic plans, asynchronous commit except for the settle; the receiver's pool keeps the defaults."""

from __future__ import annotations

import asyncio

from retry_job.cli import _with_store
from tenrusl.db import open_pool
from tenrusl.settings import Settings
from tenrusl.store import SettleItem, Store


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


def test_a_durable_transaction_commits_synchronously_on_a_run_connection(settings: Settings) -> None:
    async def inside_then_after(store: Store) -> tuple[str, str]:
        async with store.durable_transaction() as conn:
            during = await (
                await conn.execute("SELECT current_setting('synchronous_commit') AS c")
            ).fetchone()
        return during["c"] if during else "", (await _session(store))[0]

    # On inside the transaction; the run's connections themselves stay asynchronous.
    assert _with_store(settings, inside_then_after) == ("on", "off")


def test_the_settle_runs_in_a_durable_transaction(settings: Settings) -> None:
    """It moves payments: a status a reader has seen must survive a crash of the database."""

    async def settle(pool_store: Store) -> list[str]:
        names: list[str] = []
        store = Store(pool_store.pool, observe=lambda name, _s: names.append(name))
        item = SettleItem("evt_none", "mock", "succeeded", None, 1000)
        await store.retry_apply_batch([item], max_attempts=3)
        return names

    assert _with_store(settings, settle) == ["durable_commit", "retry_apply_batch"]
