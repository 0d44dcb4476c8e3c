"""Idempotency-Key: replay, mismatch, in-flight conflict, expiry; key resolution rules."""

from __future__ import annotations

import asyncio

from receiver.idempotency import request_hash, resolve_key
from tenrusl.db import open_pool
from tenrusl.store import Store

BODY = {"provider": "mock", "amount": 25000, "currency": "IDR"}


async def test_same_key_same_body_replays_the_first_response(client, db):
    first = await client.post("/api/v1/payments", json=BODY, headers={"Idempotency-Key": "order-1"})
    second = await client.post("/api/v1/payments", json=BODY, headers={"Idempotency-Key": "order-1"})
    assert first.status == second.status == 201
    assert "Idempotency-Replayed" not in first.headers
    assert second.headers["Idempotency-Replayed"] == "true"
    assert second.headers["Idempotency-Key"] == "order-1"
    assert await first.read() == await second.read()
    count = await (await db.execute("SELECT count(*) AS n FROM payments")).fetchone()
    assert count["n"] == 1


async def test_same_key_different_body_is_409_mismatch(client):
    await client.post("/api/v1/payments", json=BODY, headers={"Idempotency-Key": "order-2"})
    resp = await client.post(
        "/api/v1/payments", json={**BODY, "amount": 1}, headers={"Idempotency-Key": "order-2"}
    )
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "idempotency_mismatch"


async def test_key_in_flight_is_409_conflict(client, settings):
    async with open_pool(settings) as pool:
        store = Store(pool)
        digest = request_hash(
            {"provider": "mock", "amount": 25000, "currency": "IDR", "description": None, "meta": {}}
        )
        assert await store.claim_idempotency_key("order-3", digest, lock_seconds=30, ttl_seconds=86400)
    resp = await client.post("/api/v1/payments", json=BODY, headers={"Idempotency-Key": "order-3"})
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "idempotency_conflict"
    assert resp.headers["Retry-After"] == "1"


async def test_concurrent_requests_with_one_key_create_one_payment(client, db):
    results = await asyncio.gather(
        *[
            client.post("/api/v1/payments", json=BODY, headers={"Idempotency-Key": "order-4"})
            for _ in range(8)
        ]
    )
    statuses = sorted(r.status for r in results)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}
    ids = {(await r.json())["data"]["id"] for r in results if r.status == 201}
    assert len(ids) == 1
    count = await (await db.execute("SELECT count(*) AS n FROM payments")).fetchone()
    assert count["n"] == 1


async def test_expired_key_can_be_used_again(client, db):
    await client.post("/api/v1/payments", json=BODY, headers={"Idempotency-Key": "order-5"})
    await db.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
    resp = await client.post("/api/v1/payments", json=BODY, headers={"Idempotency-Key": "order-5"})
    assert resp.status == 201 and "Idempotency-Replayed" not in resp.headers
    count = await (await db.execute("SELECT count(*) AS n FROM payments")).fetchone()
    assert count["n"] == 2


async def test_keys_are_kept_at_least_24_hours(client, db):
    await client.post("/api/v1/payments", json=BODY, headers={"Idempotency-Key": "order-6"})
    row = await (
        await db.execute("SELECT expires_at - created_at >= interval '24 hours' AS ok FROM idempotency_keys")
    ).fetchone()
    assert row["ok"] is True


def test_key_resolution_rules():
    assert resolve_key({"Idempotency-Key": " fixed-key-123 "}, "POST", "/p", b"") == "fixed-key-123"
    assert resolve_key({"X-Idempotency-Key": "alt"}, "POST", "/p", b"") == "alt"
    assert resolve_key({"Idempotency-Key": "a\x01b"}, "POST", "/p", b"").startswith("h_")
    assert resolve_key({"Idempotency-Key": "k" * 256}, "POST", "/p", b"").startswith("h_")
    json_headers = {"Content-Type": "application/json"}
    a = resolve_key(json_headers, "POST", "/p", b'{"a":1,"b":2}')
    b = resolve_key(json_headers, "POST", "/p", b'{"b": 2, "a": 1}')
    c = resolve_key(json_headers, "POST", "/p", b'{"a":1,"b":3}')
    assert a == b != c and a.startswith("fp_")


def test_request_hash_ignores_key_order():
    assert request_hash({"a": 1, "b": {"x": 1, "y": 2}}) == request_hash({"b": {"y": 2, "x": 1}, "a": 1})
    assert request_hash({"a": 1}) != request_hash({"a": 2})
