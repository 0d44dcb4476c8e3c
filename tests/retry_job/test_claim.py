"""The claim statement: due only, limit, attempts + 1, lease, expired leases, dead, plan."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from tenrusl.db import Connection
from tenrusl.sql import queries
from tenrusl.store import Store
from tests.conftest import fetch_row
from tests.retry_job.conftest import Seed, event_row

CLAIM: dict[str, Any] = {"lease_seconds": 120, "max_attempts": 22}


async def _now(db: Connection) -> Any:
    return (await fetch_row(db, "SELECT now() AS t"))["t"]


async def test_claim_takes_only_due_retryable_events(store: Store, seed: Seed) -> None:
    due_failed = await seed(status="failed", due_in_s=-10)
    due_received = await seed(status="received", due_in_s=-5)
    await seed(status="failed", due_in_s=3600)  # not due yet
    await seed(status="processing", due_in_s=60)  # leased by a live runner
    await seed(status="processed", due_in_s=None)
    await seed(status="dead", due_in_s=None)
    await seed(status="failed", due_in_s=None)  # no schedule: never due
    claimed = await store.claim_due_events(limit=100, **CLAIM)
    assert sorted(e.id for e in claimed) == sorted([due_failed, due_received])
    assert [e.id for e in claimed] == [due_failed, due_received]  # oldest due first


async def test_claim_respects_the_limit_in_due_order(store: Store, seed: Seed) -> None:
    ids = [await seed(due_in_s=-100 + i) for i in range(5)]
    first = await store.claim_due_events(limit=2, **CLAIM)
    assert [e.id for e in first] == ids[:2]
    second = await store.claim_due_events(limit=2, **CLAIM)
    assert [e.id for e in second] == ids[2:4]


async def test_claim_adds_exactly_one_attempt_and_sets_the_lease(
    store: Store, seed: Seed, db: Connection
) -> None:
    event_id = await seed(attempts=3)
    before = await _now(db)
    [claimed] = await store.claim_due_events(limit=10, lease_seconds=90, max_attempts=22)
    row = await event_row(db, event_id)
    assert claimed.attempts == row["attempts"] == 4
    assert row["status"] == "processing"
    assert row["last_attempt_at"] >= before
    assert row["next_retry_at"] >= before + timedelta(seconds=90)
    assert row["next_retry_at"] <= await _now(db) + timedelta(seconds=90)
    assert await store.claim_due_events(limit=10, lease_seconds=90, max_attempts=22) == []  # leased


async def test_an_expired_lease_is_claimed_again(store: Store, seed: Seed, db: Connection) -> None:
    crashed = await seed(status="processing", attempts=2, due_in_s=-1)
    [claimed] = await store.claim_due_events(limit=10, **CLAIM)
    assert claimed.id == crashed and claimed.attempts == 3 and claimed.prev_status == "processing"
    assert claimed.prev_delay_ms is None  # a lease is not a backoff delay
    assert (await event_row(db, crashed))["status"] == "processing"


async def test_an_event_that_used_its_last_attempt_is_dead_not_claimed(
    store: Store, seed: Seed, db: Connection
) -> None:
    exhausted = await seed(status="processing", attempts=5, due_in_s=-1, last_error="payment not found")
    fresh = await seed(attempts=4)
    claimed = {e.id: e for e in await store.claim_due_events(limit=10, lease_seconds=60, max_attempts=5)}
    assert claimed[exhausted].status == "dead" and claimed[fresh].status == "processing"
    row = await event_row(db, exhausted)
    assert row["status"] == "dead" and row["attempts"] == 5 and row["next_retry_at"] is None
    assert row["last_error"] == "payment not found; max attempts 5 reached"
    assert await store.claim_due_events(limit=10, lease_seconds=60, max_attempts=5) == []


async def test_provider_filter(store: Store, seed: Seed) -> None:
    mock = await seed(provider="mock")
    await seed(provider="stripe")
    claimed = await store.claim_due_events(limit=10, providers=("mock",), **CLAIM)
    assert [e.id for e in claimed] == [mock]


async def test_claim_one_without_force_needs_a_due_event(store: Store, seed: Seed) -> None:
    later = await seed(due_in_s=3600)
    dead = await seed(status="dead", due_in_s=None, attempts=22)
    processed = await seed(status="processed", due_in_s=None)
    for event_id in (later, dead, processed):
        assert await store.claim_event(event_id, force=False, **CLAIM) is None
    again = await store.claim_event(later, force=True, **CLAIM)
    assert again is not None and again.attempts == 2
    forced = await store.claim_event(dead, force=True, **CLAIM)
    assert (
        forced is not None and forced.status == "processing" and forced.attempts == 23
    )  # past max, only with force
    assert await store.claim_event(processed, force=True, **CLAIM) is None


def _index_names(plan: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Index Name" in plan:
            found.add(plan["Index Name"])
        for value in plan.values():
            found |= _index_names(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= _index_names(value)
    return found


def _node_types(plan: Any) -> list[str]:
    if isinstance(plan, dict):
        return [plan.get("Node Type", "")] + [t for v in plan.values() for t in _node_types(v)]
    if isinstance(plan, list):
        return [t for v in plan for t in _node_types(v)]
    return []


async def test_claim_plan_uses_the_partial_due_index(db: Connection) -> None:
    # 200,000 processed rows outside the index and 1,000 due rows in it.
    await db.execute(
        """
        INSERT INTO webhook_events (id, provider, event_id, event_id_source, status, attempts,
                                    next_retry_at, payload_raw, payload)
        SELECT 'ev_' || g, 'mock', 'evt_' || g, 'payload',
               CASE WHEN g % 200 = 0 THEN 'failed' ELSE 'processed' END, 1,
               now() - interval '1 day' + g * interval '1 ms', convert_to('{}', 'UTF8'), '{}'::jsonb
          FROM generate_series(1, 201000) g
        """
    )
    await db.execute("ANALYZE webhook_events")
    params = {"limit": 200, "lease_seconds": 120, "max_attempts": 22, "providers": None}
    plan = (await fetch_row(db, "EXPLAIN (FORMAT JSON) " + queries["claim_due_events"], params))["QUERY PLAN"]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    assert "webhook_events_due_idx" in _index_names(plan), json.dumps(plan, indent=1)
    assert "Seq Scan" not in _node_types(plan)
    # And with the provider filter, as the operator's `providers` sets it.
    plan = (
        await fetch_row(
            db, "EXPLAIN (FORMAT JSON) " + queries["claim_due_events"], {**params, "providers": ["mock"]}
        )
    )["QUERY PLAN"]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    assert "webhook_events_due_idx" in _index_names(plan)
