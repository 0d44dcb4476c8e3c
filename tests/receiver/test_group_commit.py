"""Group commit (tenrusl/store/batch.py, tenrusl_ingest_events in 0011): a batch gives every
delivery the result it would get alone, one after the other, and one bad delivery fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg
import pytest

from tenrusl.db import open_pool
from tenrusl.errors import UnstorableText
from tenrusl.ids import new_id
from tenrusl.settings import Settings
from tenrusl.store import IngestResult, NewEvent, Store
from tenrusl.store.batch import GroupCommit

MAX_ATTEMPTS = 8


def event(event_id: str, *, ref: str | None = None, status: str = "succeeded", **changes: Any) -> NewEvent:
    fields: dict[str, Any] = {
        "id": new_id(),
        "provider": "mock",
        "event_id": event_id,
        "event_id_source": "payload",
        "event_type": "payment.succeeded",
        "payment_status": status,
        "payment_ref": ref,
        "payload_raw": b'{"id": "%s"}' % event_id.encode(),
        "payload": {"id": event_id},
        "headers": {"content-type": "application/json"},
        "source_ip": "127.0.0.1",
        "request_id": f"req-{event_id}",
        "signature_hash": "sig",
    }
    return NewEvent(**{**fields, **changes})


class CountingStore(Store):
    """The real store, recording the size of every batch statement."""

    batches: list[int]

    async def ingest_events(
        self, events: Sequence[NewEvent], retry_delay_ms: int, max_attempts: int
    ) -> list[IngestResult]:
        self.batches.append(len(events))
        return await super().ingest_events(events, retry_delay_ms, max_attempts)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[CountingStore]:
    async with open_pool(settings) as pool:
        store = CountingStore(pool)
        store.batches = []
        yield store


async def add_payment(store: Store, ref: str, status: str = "pending") -> None:
    async with store.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO payments (id, provider, provider_ref, amount, currency, status) "
            "VALUES (%s, 'mock', %s, 100, 'IDR', %s)",
            (new_id(), ref, status),
        )


async def payment_status(store: Store, ref: str) -> str:
    async with store.pool.connection() as conn:
        row = await (
            await conn.execute("SELECT status FROM payments WHERE provider_ref = %s", (ref,))
        ).fetchone()
    assert row is not None
    return str(row["status"])


async def test_a_batch_answers_each_delivery_as_if_alone(store: CountingStore) -> None:
    await add_payment(store, "pay_1")
    await add_payment(store, "pay_2")
    stored = await store.ingest_event(event("evt_old", ref="pay_2"), 0, MAX_ATTEMPTS)
    assert stored.status == "processed" and await payment_status(store, "pay_2") == "succeeded"

    batch = [
        event("evt_pending_first", ref="pay_1", status="pending"),  # ahead of the one that applies
        event("evt_applies", ref="pay_1"),
        event("evt_after", ref="pay_1", status="failed"),  # finds it succeeded already
        event("evt_old", ref="pay_2"),  # a redelivery
        event("evt_no_payment", ref="pay_missing"),
        event("evt_no_ref", payload_issues=("extraction_failed", "nul_character")),
    ]
    results = await store.ingest_events(batch, 0, MAX_ATTEMPTS)
    by_id = {e.event_id: r for e, r in zip(batch, results, strict=True)}

    assert by_id["evt_pending_first"].current_payment_status == "pending"
    assert by_id["evt_pending_first"].status == "processed"
    assert by_id["evt_applies"].current_payment_status == "succeeded"
    assert by_id["evt_after"].current_payment_status == "succeeded"
    assert await payment_status(store, "pay_1") == "succeeded"  # the first that moved it, not the last

    old = by_id["evt_old"]
    assert old.duplicate and old.id == stored.id and old.current_payment_status == "succeeded"
    for name, reason in (("evt_no_payment", "payment not found"), ("evt_no_ref", "payment reference")):
        r = by_id[name]
        assert r.status == "failed" and r.next_retry_at is not None and not r.duplicate
        assert r.last_error is not None and r.last_error.startswith(reason)
    assert [r.id for r in results if not r.duplicate] == [e.id for e in batch if e.event_id != "evt_old"]

    async with store.pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT event_id, deliveries, request_id, payload_issues FROM webhook_events ORDER BY event_id"
            )
        ).fetchall()
    issues = {r["event_id"]: r["payload_issues"] for r in rows}
    assert issues["evt_no_ref"] == ["extraction_failed", "nul_character"] and issues["evt_applies"] == []
    assert {r["event_id"]: r["deliveries"] for r in rows}["evt_old"] == 2
    assert {r["event_id"]: r["request_id"] for r in rows}["evt_applies"] == "req-evt_applies"


async def test_concurrent_deliveries_share_one_commit(store: CountingStore) -> None:
    ingest = GroupCommit(store, max_batch=64, flushes=1, retry_delay_ms=0, max_attempts=MAX_ATTEMPTS)
    deliveries = [event(f"evt_{n}") for n in range(10)] + [event("evt_3")]  # one redelivered at once
    results = await asyncio.gather(*(ingest.ingest(e) for e in deliveries))
    assert store.batches == [10]  # the redelivery waits for the next batch (of one)...
    assert results[-1].duplicate and results[-1].id == results[3].id  # ...and is a duplicate there
    assert not any(r.duplicate for r in results[:-1])


async def test_batches_are_capped_and_run_side_by_side(store: CountingStore) -> None:
    ingest = GroupCommit(store, max_batch=4, flushes=2, retry_delay_ms=0, max_attempts=MAX_ATTEMPTS)
    results = await asyncio.gather(*(ingest.ingest(event(f"evt_{n}")) for n in range(10)))
    assert sorted(store.batches) == [2, 4, 4] and len({r.id for r in results}) == 10


async def test_batch_max_one_is_the_single_statement(store: CountingStore) -> None:
    ingest = GroupCommit(store, max_batch=1, flushes=4, retry_delay_ms=0, max_attempts=MAX_ATTEMPTS)
    results = await asyncio.gather(*(ingest.ingest(event(f"evt_{n}")) for n in range(3)))
    assert store.batches == [] and [r.status for r in results] == ["failed"] * 3


async def test_a_delivery_the_database_refuses_fails_alone(store: CountingStore) -> None:
    ingest = GroupCommit(store, max_batch=64, flushes=1, retry_delay_ms=0, max_attempts=MAX_ATTEMPTS)
    too_long_ref = event("evt_bad", ref="r" * 300)  # over the column's CHECK
    deliveries = [event("evt_a"), too_long_ref, event("evt_b")]
    results = await asyncio.gather(*(ingest.ingest(e) for e in deliveries), return_exceptions=True)
    assert store.batches == [3]
    assert isinstance(results[1], psycopg.errors.CheckViolation)
    assert all(isinstance(r, IngestResult) and not r.duplicate for r in (results[0], results[2]))


async def test_unstorable_text_is_refused_before_the_batch(store: CountingStore) -> None:
    ingest = GroupCommit(store, max_batch=64, flushes=1, retry_delay_ms=0, max_attempts=MAX_ATTEMPTS)
    deliveries = [event("evt_a"), event("evt_nul", event_type="a\x00b")]
    results = await asyncio.gather(*(ingest.ingest(e) for e in deliveries), return_exceptions=True)
    assert isinstance(results[1], UnstorableText) and isinstance(results[0], IngestResult)
    assert store.batches == []  # a batch of one runs the single-delivery statement
