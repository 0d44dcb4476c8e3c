"""The claim statement: due only, limit, attempts + 1, lease, expired leases, dead, plan."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from psycopg import sql

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


async def _plans(db: Connection, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The statement's plan for these values (``custom``) and its ``generic`` plan: the one a
    prepared statement may switch to after five executions (psycopg prepares a statement after
    five too), planned without knowing the values, the limit included."""
    custom = (await fetch_row(db, "EXPLAIN (FORMAT JSON) " + queries[name], params))["QUERY PLAN"]
    names: list[str] = []

    def positional(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    text = re.sub(r"%\((\w+)\)s", positional, queries[name]).replace("%%", "%")
    await db.execute(f"PREPARE guarded AS {text}")
    try:
        await db.execute("SET plan_cache_mode = force_generic_plan")
        values = sql.SQL(", ").join(sql.Literal(params[n]) for n in names)
        explain = sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE guarded({})").format(values)
        row = await (await db.execute(explain)).fetchone()
        assert row is not None
        generic = row["QUERY PLAN"]
    finally:
        await db.execute("RESET plan_cache_mode")
        await db.execute("DEALLOCATE guarded")
    return {
        kind: json.loads(plan) if isinstance(plan, str) else plan
        for kind, plan in (("custom", custom), ("generic", generic))
    }


async def _history(db: Connection, rows: int, every: int) -> None:
    """``rows`` events, every ``every``-th one due (the others processed, outside the due index),
    and a payment per 10 events. With 201,000 rows and every 200th due, the statistics misjudge
    the due rows: status and next_retry_at are correlated, the planner multiplies their
    selectivities and expects about 5, not 1,000. With every row due (a backlog), a generic plan
    expects a tenth of them per claim; those events carry payloads of a real size (about 600
    bytes), else the table is so small that reading all of it is rightly the cheapest plan."""
    await db.execute(
        """
        INSERT INTO webhook_events (id, provider, event_id, event_id_source, status, attempts,
                                    next_retry_at, received_at, payload_raw, payload)
        SELECT 'ev_' || g, 'mock', 'evt_' || g, 'payload',
               CASE WHEN g %% %(every)s = 0 THEN 'failed' ELSE 'processed' END, 1,
               CASE WHEN g %% %(every)s = 0 THEN now() - interval '1 day' + g * interval '1 ms' END,
               now() - interval '2 days' + g * interval '1 ms', convert_to(p::text, 'UTF8'), p
          FROM generate_series(1, %(rows)s) g,
               LATERAL (SELECT CASE WHEN %(every)s = 1 THEN jsonb_build_object('pad', repeat('x', 600))
                                    ELSE '{}'::jsonb END AS p) x
        """,
        {"rows": rows, "every": every},
    )
    await db.execute(
        "INSERT INTO payments (id, provider, provider_ref, amount, currency) "
        "SELECT 'pay_' || g, 'mock', 'ref_' || g, 1000, 'IDR' FROM generate_series(1, %s) g",
        (rows // 10,),
    )
    await db.execute("ANALYZE webhook_events")
    await db.execute("ANALYZE payments")


HISTORIES = pytest.mark.parametrize(
    ("rows", "every"), [(201_000, 200), (20_000, 1)], ids=["history", "backlog"]
)


@HISTORIES
async def test_claim_plan_walks_the_due_index_in_order_and_stops_at_the_limit(
    db: Connection, rows: int, every: int
) -> None:
    """O(batch) whatever the table holds and whatever the statistics say: the partial due index,
    read in its own order (no Sort, which would read every due row first), and the claimed rows
    found by primary key (no table scan), in the plan for these values and in the generic one."""
    await _history(db, rows, every)
    params = {"limit": 200, "lease_seconds": 120, "max_attempts": 22, "providers": None, "rules": "x"}
    for providers in (None, ["mock"]):  # and with the operator's `providers` filter
        for kind, plan in (await _plans(db, "claim_due_events", {**params, "providers": providers})).items():
            shown = f"{kind} plan, providers={providers}: {json.dumps(plan, indent=1)}"
            assert "webhook_events_due_idx" in _index_names(plan), shown
            assert "webhook_events_pkey" in _index_names(plan), shown
            assert not {"Seq Scan", "Sort", "Incremental Sort"} & set(_node_types(plan)), shown


@HISTORIES
async def test_settle_plan_reaches_every_row_through_a_unique_index(
    db: Connection, rows: int, every: int
) -> None:
    await _history(db, rows, every)
    ids = [f"ev_{g}" for g in range(every, 201 * every, every)]
    params = {
        "ids": ids,
        "providers": ["mock"] * len(ids),
        "payment_statuses": ["succeeded"] * len(ids),
        "payment_refs": [f"ref_{g}" for g in range(len(ids))],
        "retry_delays_ms": [1000] * len(ids),
        "max_attempts": 22,
        "rules": "x",
    }
    for kind, plan in (await _plans(db, "retry_apply_batch", params)).items():
        shown = f"{kind} plan: {json.dumps(plan, indent=1)}"
        assert {"webhook_events_pkey", "payments_pkey", "payments_provider_ref_unique"} <= _index_names(
            plan
        ), shown
        assert "Seq Scan" not in _node_types(plan), shown


def test_both_claims_return_the_same_columns() -> None:
    """The runner builds a ClaimedEvent from either (a batch claim, or `retry one`'s)."""

    def returning(name: str) -> str:
        text = queries[name].split("RETURNING", 1)[1]
        return " ".join(re.sub(r"--[^\n]*", "", text).split())

    assert returning("claim_due_events") == returning("claim_event")
