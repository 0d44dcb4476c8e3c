"""Admin HTTP: list webhook events, and "retry now" one of them."""

from __future__ import annotations

from tenrusl.db import Connection
from tests.conftest import ADMIN_KEY
from tests.conftest import ReceiverClient as TestClient
from tests.retry_job.conftest import Seed, event_row

H = {"X-Admin-Key": ADMIN_KEY}


async def test_list_needs_the_admin_key_and_filters(client: TestClient, seed: Seed) -> None:
    dead = await seed(status="dead", due_in_s=None)
    await seed(status="failed")
    assert (await client.admin.get("/api/v1/admin/webhook-events")).status == 401
    resp = await client.admin.get("/api/v1/admin/webhook-events", headers=H)
    body = await resp.json()
    assert resp.status == 200 and body["meta"]["total"] == 2
    resp = await client.admin.get("/api/v1/admin/webhook-events?status=dead&per_page=1", headers=H)
    body = await resp.json()
    assert [e["id"] for e in body["data"]] == [dead] and body["meta"]["last_page"] == 1
    resp = await client.admin.get("/api/v1/admin/webhook-events?status=bogus&page=x", headers=H)
    assert resp.status == 422 and set((await resp.json())["error"]["fields"]) == {"status", "page"}
    resp = await client.admin.get("/api/v1/admin/webhook-events?page=5", headers=H)
    assert (await resp.json())["meta"]["total"] == 2


async def test_retry_now_schedules_and_force_revives_dead(
    client: TestClient, seed: Seed, db: Connection
) -> None:
    later = await seed(status="failed", due_in_s=3600)
    resp = await client.admin.post(f"/api/v1/admin/webhook-events/{later}/retry", headers=H)
    assert resp.status == 202 and (await resp.json())["meta"]["scheduled"] is True
    row = await event_row(db, later)
    assert row["status"] == "failed" and row["next_retry_at"] <= row["updated_at"]

    dead = await seed(status="dead", attempts=22, due_in_s=None, last_error="payment not found")
    resp = await client.admin.post(f"/api/v1/admin/webhook-events/{dead}/retry", headers=H)
    assert resp.status == 409
    resp = await client.admin.post(f"/api/v1/admin/webhook-events/{dead}/retry?force=true", headers=H)
    assert resp.status == 202
    row = await event_row(db, dead)
    assert (row["status"], row["attempts"]) == ("failed", 0)
    assert "previous error: payment not found" in row["last_error"]

    done = await seed(status="processed", due_in_s=None)
    assert (
        await client.admin.post(f"/api/v1/admin/webhook-events/{done}/retry?force=1", headers=H)
    ).status == 409
    assert (await client.admin.post("/api/v1/admin/webhook-events/nope/retry", headers=H)).status == 404
    assert (await client.admin.post(f"/api/v1/admin/webhook-events/{later}/retry")).status == 401
