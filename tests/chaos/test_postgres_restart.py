"""PostgreSQL restarted under load: the receiver answers only 202 or 503, and recovers by itself.

While the database is gone every delivery gets 503 with Retry-After (never a 500, never a cut
connection, never a 202 for an event that was not stored); once it is back the pool reconnects
without a restart of the receiver. Two ways down: ``fast`` (a normal restart: sessions aborted,
checkpoint) and ``immediate`` (the server crashes and recovers from its WAL on start).
"""

from __future__ import annotations

import asyncio

import pytest

from tenrusl.settings import Settings
from tests.chaos.conftest import Chaos, log_tails
from tests.chaos.load import SignedLoad

pytestmark = pytest.mark.chaos

WARM_UP_ACKS = 200
# A functional deadline from the issue ("answering 202 again within 5 s of the database"), not a
# performance figure: it bounds how long the pool may take to notice that the database is back.
RECOVERY_DEADLINE_S = 5.0
# The shipped pool settings: how fast the pool recovers depends on them (tenrusl/db.py).
_DEFAULTS = Settings()
SHIPPED_POOL = {
    "TENRUSL_DB_POOL_MIN": str(_DEFAULTS.db_pool_min),
    "TENRUSL_DB_POOL_MAX": str(_DEFAULTS.db_pool_max),
    "TENRUSL_DB_CONNECT_TIMEOUT_SECONDS": str(_DEFAULTS.db_connect_timeout_s),
}


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restart_under_load(chaos: Chaos, mode: str) -> None:
    """Only 202/503 during a restart; every 202 stored; 202 again within 5 s of the database.

    The 5 s bound is a functional deadline (the receiver must notice by itself that PostgreSQL is
    back, without a restart), asserted against the clock only because the issue states it as a
    requirement; it is not a performance measurement. With the shipped pool settings (used here)
    recovery takes at most the pool's wait timeout (3 s), see tenrusl/db.py.
    """
    receiver = await chaos.start_receiver(**SHIPPED_POOL)
    load = SignedLoad(receiver.url, prefix=f"evt_pg_{mode}", concurrency=24)
    async with load:
        await load.until(lambda: len(load.acknowledged) >= WARM_UP_ACKS, 30, "the warm-up")
        await asyncio.to_thread(chaos.postgres.stop, mode)
        down_from = len(load.answers)
        # Stay down until the receiver has answered a few deliveries without its database.
        await load.until(lambda: load.count(503) >= 24, 30, "503s while the database is down")
        back_at = await asyncio.to_thread(chaos.postgres.start)
        first_202 = await load.until(
            lambda: any(a.status == 202 and a.sent_at >= back_at for a in load.answers[down_from:]),
            30,
            "a 202 after the database came back",
        )
        recovered_from = len(load.answers)
        await load.until(lambda: len(load.answers) >= recovered_from + 100, 30, "load after recovery")

    recovery_s = first_202 - back_at
    report = f"{mode}: first 202 {recovery_s:.2f} s after the database accepted connections; {load.summary()}"
    print(report)
    assert set(load.statuses()) <= {202, 503}, f"{report}\n{log_tails(chaos)()}"  # no 500, no reset
    assert load.count(503) >= 24
    assert recovery_s < RECOVERY_DEADLINE_S, report
    stored = set(await chaos.stored_event_ids())
    missing = sorted(load.acknowledged - stored)
    assert not missing, f"acknowledged but not stored: {missing}\n{report}"
    # Once recovered it stays recovered: the last deliveries were all accepted.
    tail = load.answers[recovered_from + 50 :]
    assert tail and all(a.status == 202 for a in tail), report
