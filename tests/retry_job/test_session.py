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


def test_the_settle_commits_synchronously_on_a_run_connection(settings: Settings) -> None:
    """It moves payments: a status a reader has seen must survive a crash of the database.

    The settle statement turns synchronous commit on for its own transaction. Run inside an
    explicit transaction here, so the setting can be read after it (an autocommit settle's
    transaction is the statement's own); also with nothing to settle (a one-time filter that
    never ran would leave the commit asynchronous).
    """

    async def inside_then_after(store: Store) -> tuple[list[str], str]:
        seen: list[str] = []
        for item in ([SettleItem("evt_none", "mock", "succeeded", None, 1000)], []):
            async with store.connection() as conn, conn.transaction():
                before = await (
                    await conn.execute("SELECT current_setting('synchronous_commit') AS c")
                ).fetchone()
                assert before is not None and before["c"] == "off"
                await store.fetch_all("retry_apply_batch", _settle_params(item), conn=conn)
                during = await (
                    await conn.execute("SELECT current_setting('synchronous_commit') AS c")
                ).fetchone()
                assert during is not None
                seen.append(during["c"])
        return seen, (await _session(store))[0]

    # On for the settle's transaction; the run's connections themselves stay asynchronous.
    assert _with_store(settings, inside_then_after) == (["on", "on"], "off")


def test_the_settle_is_one_statement(settings: Settings) -> None:
    """No transaction block around it: one round trip, one statement per batch."""

    async def settle(pool_store: Store) -> list[str]:
        names: list[str] = []
        store = Store(pool_store.pool, observe=lambda name, _s: names.append(name))
        item = SettleItem("evt_none", "mock", "succeeded", None, 1000)
        await store.retry_apply_batch([item], max_attempts=3)
        return names

    assert _with_store(settings, settle) == ["retry_apply_batch"]


def _settle_params(items: list[SettleItem]) -> dict[str, object]:
    return {
        "ids": [i.id for i in items],
        "providers": [i.provider for i in items],
        "payment_statuses": [i.payment_status for i in items],
        "payment_refs": [i.payment_ref for i in items],
        "retry_delays_ms": [i.retry_delay_ms for i in items],
        "max_attempts": 3,
        "rules": "x",
    }
