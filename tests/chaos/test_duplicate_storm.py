"""50 concurrent deliveries of the same signed event: one row, one payment transition, all answered 202.

What the receiver guarantees (tenrusl_ingest_event, migration 0004): the unique key
``(provider, event_id)`` admits one row; racing first deliveries may all try to apply the payment,
but the transition is a guarded ``UPDATE ... WHERE status = 'pending'``, so it happens once; every
delivery is answered 202 and exactly one of them reports ``duplicate: false``. The count of
deliveries is kept on the row. A trigger in the test's own database records every UPDATE of the
payment, so "applied once" is observed, not inferred.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import aiohttp
import pytest

from tests.chaos.conftest import Chaos
from tests.chaos.load import Answer, deliver, event_payload, session

pytestmark = pytest.mark.chaos

DELIVERIES = 50
ROUNDS = 3  # three storms on three payments: more chances for the race to show

RECORD_UPDATES = """
CREATE TABLE chaos_payment_updates (
    payment_id text, old_status text, new_status text, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION chaos_record_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chaos_payment_updates (payment_id, old_status, new_status)
    VALUES (NEW.id, OLD.status, NEW.status);
    RETURN NEW;
END $$;
CREATE TRIGGER chaos_record_update AFTER UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION chaos_record_update();
"""


async def storm(client: aiohttp.ClientSession, url: str, payload: dict[str, Any]) -> list[Answer]:
    """DELIVERIES copies of one delivery, released together."""
    go = asyncio.Event()

    async def one() -> Answer:
        await go.wait()
        return await deliver(client, url, payload)

    tasks = [asyncio.create_task(one()) for _ in range(DELIVERIES)]
    await asyncio.sleep(0)  # every task is waiting at the gate
    go.set()
    return list(await asyncio.gather(*tasks))


async def test_concurrent_copies_of_one_event_store_and_apply_once(chaos: Chaos) -> None:
    receiver = await chaos.start_receiver()
    async with await chaos.connect() as db:
        await db.execute(RECORD_UPDATES)
        for n in range(ROUNDS):
            await db.execute(
                "INSERT INTO payments (id, provider, provider_ref, amount, currency) "
                "VALUES (%s, 'mock', %s, 150000, 'IDR')",
                (f"pay_storm_{n}", f"ref_storm_{n}"),
            )

    async with session(DELIVERIES) as client:
        for n in range(ROUNDS):
            payload = event_payload(f"evt_storm_{n}", provider_ref=f"ref_storm_{n}")
            answers = await storm(client, receiver.url, payload)
            overlap = max(a.sent_at for a in answers) < min(a.done_at for a in answers)
            print(
                f"round {n}: {Counter((a.status, a.duplicate) for a in answers)}, all in flight at once: {overlap}"
            )

            assert Counter(a.status for a in answers) == {202: DELIVERIES}, answers
            assert Counter(a.duplicate for a in answers) == {False: 1, True: DELIVERIES - 1}

    async with await chaos.connect() as db:
        rows = await (
            await db.execute(
                "SELECT event_id, status, deliveries, payment_provider_ref FROM webhook_events ORDER BY event_id"
            )
        ).fetchall()
        assert [(r["event_id"], r["status"], r["deliveries"]) for r in rows] == [
            (f"evt_storm_{n}", "processed", DELIVERIES) for n in range(ROUNDS)
        ]
        payments = await (await db.execute("SELECT id, status FROM payments ORDER BY id")).fetchall()
        assert [(p["id"], p["status"]) for p in payments] == [
            (f"pay_storm_{n}", "succeeded") for n in range(ROUNDS)
        ]
        updates = await (
            await db.execute(
                "SELECT payment_id, old_status, new_status FROM chaos_payment_updates ORDER BY at"
            )
        ).fetchall()
        assert sorted((u["payment_id"], u["old_status"], u["new_status"]) for u in updates) == [
            (f"pay_storm_{n}", "pending", "succeeded") for n in range(ROUNDS)
        ]  # each payment written exactly once: the transition, nothing after it
