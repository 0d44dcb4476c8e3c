"""Re-applying a stored event: its stored payment fields when this process's provider rules read
them, its payload read again when other rules did (migration 0010); and the batch settle."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from receiver.webhooks import EXTRACTION_FAILED
from retry_job.runner import Runner
from tenrusl import sql
from tenrusl.db import Connection
from tenrusl.providers import rules_fingerprint
from tenrusl.settings import Settings
from tenrusl.store import Store
from tests.conftest import with_database
from tests.receiver.helpers import mock_delivery
from tests.retry_job.conftest import Seed, event_row


async def _add_payment(db: Connection, ref: str, status: str = "pending") -> None:
    await db.execute(
        "INSERT INTO payments (id, provider, provider_ref, amount, currency, status) "
        "VALUES (%s, 'mock', %s, 1000, 'IDR', %s)",
        (uuid.uuid4().hex, ref, status),
    )


async def _payment_status(db: Connection, ref: str) -> str:
    cur = await db.execute("SELECT status FROM payments WHERE provider_ref = %s", (ref,))
    row = await cur.fetchone()
    assert row is not None
    return str(row["status"])


async def test_the_receiver_stamps_its_rules_and_the_runner_uses_the_stored_fields(
    client: Any, db: Connection, store: Store, no_redis_settings: Settings
) -> None:
    body, headers = mock_delivery({"id": "evt_early", "status": "succeeded", "provider_ref": "ref-late"})
    assert (await client.post("/api/v1/webhooks/mock", data=body, headers=headers)).status == 202
    cur = await db.execute("SELECT * FROM webhook_events WHERE event_id = 'evt_early'")
    row = await cur.fetchone()
    assert row is not None and row["status"] == "failed"  # its payment does not exist yet
    assert row["extracted_with"] == rules_fingerprint()
    assert (row["payment_status"], row["payment_provider_ref"]) == ("succeeded", "ref-late")

    await _add_payment(db, "ref-late")
    # The payload is not read again: blank it, and the stored fields still settle the event.
    await db.execute(
        "UPDATE webhook_events SET payload = '{}', next_retry_at = now() WHERE id = %s", (row["id"],)
    )
    [claimed] = await store.claim_due_events(limit=10, lease_seconds=60, max_attempts=22)
    assert claimed.fields_current and claimed.payload is None
    await db.execute(
        "UPDATE webhook_events SET status = 'failed', next_retry_at = now() WHERE id = %s", (row["id"],)
    )
    result = await Runner(no_redis_settings, store).run()
    assert result.summary == "CLAIMED=1 OK=1 FAIL=0 DEAD=0"
    assert (await event_row(db, row["id"]))["status"] == "processed"
    assert await _payment_status(db, "ref-late") == "succeeded"


@pytest.mark.parametrize(
    ("stamp", "issues"),
    [("older-rules", []), (None, []), ("current", [EXTRACTION_FAILED])],
    ids=["other-rules", "before-0010", "rules-raised-at-ingest"],
)
async def test_an_event_read_by_other_rules_is_read_again_with_the_current_ones(
    db: Connection,
    seed: Seed,
    store: Store,
    no_redis_settings: Settings,
    stamp: str | None,
    issues: list[str],
) -> None:
    """Stored fields from other rules (here: the wrong reference), or stored by a receiver whose
    rules raised on the payload, are never trusted."""
    event_id = await seed(ref="right-ref")
    await _add_payment(db, "right-ref")
    await db.execute(
        "UPDATE webhook_events SET payment_status = 'pending', payment_provider_ref = 'wrong-ref', "
        "extracted_with = %s, payload_issues = %s WHERE id = %s",
        (rules_fingerprint() if stamp == "current" else stamp, issues, event_id),
    )
    result = await Runner(no_redis_settings, store).run()
    assert result.summary == "CLAIMED=1 OK=1 FAIL=0 DEAD=0"
    row = await event_row(db, event_id)
    assert (row["status"], row["payment_status"], row["payment_provider_ref"]) == (
        "processed",
        "succeeded",
        "right-ref",
    )
    assert row["extracted_with"] == rules_fingerprint()  # read by the current rules now
    assert await _payment_status(db, "right-ref") == "succeeded"


async def test_a_batch_moves_a_payment_once_and_the_first_event_in_due_order_decides(
    db: Connection, seed: Seed, store: Store, no_redis_settings: Settings
) -> None:
    """As if applied one after another: the first event settles the payment, the later one
    finds it final and only records itself processed; a final payment never flips."""
    first = await seed(ref="shared", payment_status="failed", due_in_s=-120)
    later = await seed(ref="shared", payment_status="succeeded", due_in_s=-60)
    missing = await seed(ref="nobody", due_in_s=-30)
    await _add_payment(db, "shared")
    result = await Runner(no_redis_settings, store).run()
    assert result.summary == "CLAIMED=3 OK=2 FAIL=1 DEAD=0"
    assert await _payment_status(db, "shared") == "failed"
    for event_id in (first, later):
        assert (await event_row(db, event_id))["status"] == "processed"
    row = await event_row(db, missing)
    assert (row["status"], row["last_error"], row["attempts"]) == ("failed", "payment not found", 2)


async def test_settling_an_event_that_is_gone_returns_nothing_for_it(
    db: Connection, seed: Seed, store: Store
) -> None:
    from tenrusl.store import SettleItem

    kept = await seed(ref="kept")
    await _add_payment(db, "kept")
    items = [
        SettleItem("no-such-event", "mock", "succeeded", "kept", 1000),
        SettleItem(kept, "mock", "succeeded", "kept", 1000),
    ]
    settled = await store.retry_apply_batch(items, max_attempts=22)
    assert list(settled) == [kept] and settled[kept].status == "processed"
    assert settled[kept].payment_status == "succeeded"


async def test_rows_stored_before_migration_0010_are_not_stamped(pg_server_url: str) -> None:
    """The column's default is set after the column is added: a row that existed before is NULL
    (read again), even when the migrating connection carries a fingerprint."""
    name = f"t_0010_{uuid.uuid4().hex[:8]}"
    options = "-c tenrusl.extraction_rules=migrating-process"
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(with_database(pg_server_url, name), autocommit=True, options=options) as conn:
            migrations = dict(sql.migrations())
            for version, text in migrations.items():
                if version < "0010":
                    conn.execute(text)
            insert = (
                "INSERT INTO webhook_events (id, provider, event_id, event_id_source, payload_raw, payload) "
                "VALUES (%s, 'mock', %s, 'payload', '', '{}')"
            )
            conn.execute(insert, ("old", "evt_old"))
            conn.execute(migrations["0010_retry_drain"])
            conn.execute(insert, ("new", "evt_new"))
            rows = conn.execute("SELECT id, extracted_with FROM webhook_events ORDER BY id").fetchall()
        assert rows == [("new", "migrating-process"), ("old", None)]
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
