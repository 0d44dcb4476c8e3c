"""Settles in flight while the run claims on: bounded, all finished before the run ends, claim
order kept for a payment two batches name, and a failed settle stops the run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from retry_job.runner import SETTLES_IN_FLIGHT, Runner, RunOptions
from tenrusl.db import Connection
from tenrusl.errors import DatabaseUnavailable
from tenrusl.settings import Settings
from tenrusl.store import Store
from tests.retry_job.conftest import Seed, event_row

ONE_BY_ONE = RunOptions(trigger="test", flags={"batch_size": 1})


def _wrap_settle(store: Store, before: Callable[[int], Awaitable[None]]) -> dict[str, int]:
    """Call ``before(n)`` ahead of the n-th settle (from 1); count settles in flight."""
    original = store.retry_apply_batch
    seen = {"calls": 0, "in_flight": 0, "most": 0, "finished": 0}

    async def settle(*args: Any, **kwargs: Any) -> Any:
        seen["calls"] += 1
        seen["in_flight"] += 1
        seen["most"] = max(seen["most"], seen["in_flight"])
        try:
            await before(seen["calls"])
            return await original(*args, **kwargs)
        finally:
            seen["in_flight"] -= 1
            seen["finished"] += 1

    store.retry_apply_batch = settle  # type: ignore[method-assign]
    return seen


async def test_settles_overlap_up_to_the_bound_and_all_finish_before_the_run_ends(
    store: Store, seed: Seed, db: Connection, no_redis_settings: Settings
) -> None:
    ids = [await seed(ref=f"pay-{n}", payment=True, due_in_s=-100 + n) for n in range(6)]
    second = asyncio.Event()

    async def before(n: int) -> None:
        if n == 2:
            second.set()
        if n == 1:  # the first settle waits until the run started the next one meanwhile
            await asyncio.wait_for(second.wait(), timeout=30)

    seen = _wrap_settle(store, before)
    result = await Runner(no_redis_settings, store, ONE_BY_ONE).run()
    assert (result.outcome, result.summary) == ("completed", "CLAIMED=6 OK=6 FAIL=0 DEAD=0")
    assert seen["most"] == SETTLES_IN_FLIGHT and (seen["calls"], seen["finished"]) == (6, 6)
    assert {(await event_row(db, i))["status"] for i in ids} == {"processed"}


async def test_a_payment_two_batches_name_moves_to_the_first_in_claim_order(
    store: Store, seed: Seed, db: Connection, no_redis_settings: Settings
) -> None:
    """The second batch's settle waits for the first's, even when the first is slow."""
    first = await seed(ref="pay-shared", payment=True, payment_status="failed", due_in_s=-120)
    later = await seed(ref="pay-shared", payment_status="succeeded", due_in_s=-60)
    other_done = asyncio.Event()

    async def before(n: int) -> None:
        if n == 1:  # slow: gives a second settle every chance to overtake it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(other_done.wait(), timeout=1)

    seen = _wrap_settle(store, before)
    original = store.retry_apply_batch

    async def settle(*args: Any, **kwargs: Any) -> Any:
        try:
            return await original(*args, **kwargs)
        finally:
            if seen["calls"] > 1:
                other_done.set()

    store.retry_apply_batch = settle  # type: ignore[method-assign]
    result = await Runner(no_redis_settings, store, ONE_BY_ONE).run()
    assert result.summary == "CLAIMED=2 OK=2 FAIL=0 DEAD=0"
    row = await (await db.execute("SELECT status FROM payments WHERE provider_ref = 'pay-shared'")).fetchone()
    assert row is not None and row["status"] == "failed"
    assert {(await event_row(db, i))["status"] for i in (first, later)} == {"processed"}
    assert seen["most"] == 1


async def test_a_settle_that_fails_stops_the_run_and_the_others_are_counted(
    store: Store, seed: Seed, db: Connection, no_redis_settings: Settings
) -> None:
    ids = [await seed(ref=f"pay-{n}", payment=True, due_in_s=-100 + n) for n in range(6)]

    async def before(n: int) -> None:
        if n == 2:
            raise DatabaseUnavailable("database unavailable: test")

    _wrap_settle(store, before)
    result = await Runner(no_redis_settings, store, ONE_BY_ONE).run()
    assert (result.outcome, result.exit_code) == ("error", 1)
    statuses = [(await event_row(db, i))["status"] for i in ids]
    assert statuses[1] == "processing"  # its batch's settle failed: leased, back after the lease
    assert result.claimed < 6  # the run claimed nothing more once it saw the failure
    assert statuses.count("processed") == result.ok and result.failed == result.dead == 0
    # every claimed event is settled or leased; the rest were never claimed
    assert statuses[: result.claimed].count("processing") == result.claimed - result.ok
    assert statuses[result.claimed :] == ["failed"] * (6 - result.claimed)
