"""The mock provider end to end: gate order, dedup, processing, retries scheduling."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.conftest import MOCK_SECRET
from tests.receiver.helpers import create_payment, mock_delivery

URL = "/api/v1/webhooks/mock"


async def post(client, payload, **kwargs):
    body, headers = mock_delivery(payload, **kwargs)
    return await client.post(URL, data=body, headers=headers)


async def test_hmac_signed_webhook_is_stored_and_applied(client, db):
    payment = await create_payment(client)
    resp = await post(
        client,
        {
            "id": "evt_1",
            "type": "payment.succeeded",
            "status": "succeeded",
            "provider_ref": payment["provider_ref"],
        },
    )
    assert resp.status == 202
    data = (await resp.json())["data"]
    assert data["event"] == {
        "provider": "mock",
        "event_id": "evt_1",
        "type": "payment.succeeded",
        "event_id_source": "payload",
        "event_id_generated": False,
    }
    assert data["result"]["duplicate"] is False and data["result"]["persisted"] is True
    assert data["result"]["applied"] is True and data["result"]["status"] == "succeeded"
    assert data["result"]["next_retry_ms"] is None
    row = await (await db.execute("SELECT * FROM webhook_events WHERE event_id = 'evt_1'")).fetchone()
    assert row["status"] == "processed" and row["attempts"] == 1 and row["processed_at"] is not None
    assert (
        bytes(row["payload_raw"])
        == json.dumps(
            {
                "id": "evt_1",
                "type": "payment.succeeded",
                "status": "succeeded",
                "provider_ref": payment["provider_ref"],
            }
        ).encode()
    )
    assert "x-mock-signature" not in row["headers"] and row["signature_hash"]
    stored = await (await client.get(f"/api/v1/payments/{payment['id']}")).json()
    assert stored["data"]["status"] == "succeeded"
    assert [e["event_id"] for e in stored["data"]["webhook_events"]] == ["evt_1"]


async def test_bearer_token_scheme_is_accepted(client):
    body = json.dumps({"id": "evt_bearer", "status": "pending"}).encode()
    resp = await client.post(
        URL, data=body, headers={"Content-Type": "application/json", "Authorization": f"Bearer {MOCK_SECRET}"}
    )
    assert resp.status == 202


async def test_same_bytes_again_are_a_duplicate_that_changes_nothing(client, db):
    payment = await create_payment(client)
    payload = {"id": "evt_dup", "status": "succeeded", "provider_ref": payment["provider_ref"]}
    assert (await post(client, payload)).status == 202
    before = await (await db.execute("SELECT * FROM payments")).fetchone()
    resp = await post(client, payload)
    assert resp.status == 202
    result = (await resp.json())["data"]["result"]
    assert result["duplicate"] is True and result["status"] == "succeeded"
    rows = await (await db.execute("SELECT * FROM webhook_events")).fetchall()
    assert len(rows) == 1 and rows[0]["deliveries"] == 2 and rows[0]["attempts"] == 1
    after = await (await db.execute("SELECT * FROM payments")).fetchone()
    assert after["updated_at"] == before["updated_at"]


async def test_final_status_never_moves_backwards_or_flips(client):
    payment = await create_payment(client)
    ref = payment["provider_ref"]
    assert (await post(client, {"id": "e1", "status": "succeeded", "provider_ref": ref})).status == 202
    for event_id, status in (("e2", "pending"), ("e3", "failed")):
        resp = await post(client, {"id": event_id, "status": status, "provider_ref": ref})
        assert (await resp.json())["data"]["result"]["status"] == "succeeded"
    current = await (await client.get(f"/api/v1/payments/{payment['id']}")).json()
    assert current["data"]["status"] == "succeeded"


async def test_unmatched_event_is_stored_and_scheduled_for_retry(client, db):
    resp = await post(client, {"id": "evt_orphan", "status": "succeeded", "provider_ref": "sim_mock_unknown"})
    assert resp.status == 202
    result = (await resp.json())["data"]["result"]
    assert result["applied"] is False and result["event_status"] == "failed"
    assert result["next_retry_ms"] is not None
    row = await (await db.execute("SELECT * FROM webhook_events WHERE event_id = 'evt_orphan'")).fetchone()
    assert row["status"] == "failed" and row["next_retry_at"] is not None
    assert row["last_error"] == "payment not found" and row["payment_status"] == "succeeded"
    resp = await post(client, {"id": "evt_noref", "status": "succeeded"})
    row = await (await db.execute("SELECT * FROM webhook_events WHERE event_id = 'evt_noref'")).fetchone()
    assert row["status"] == "failed" and row["last_error"] == "payment reference not found in payload"


async def test_max_attempts_of_one_makes_an_unmatched_event_dead(make_client, make_settings, db):
    client = await make_client(make_settings(TENRUSL_MAX_RETRY_ATTEMPTS="1"))
    await post(client, {"id": "evt_dead", "status": "succeeded", "provider_ref": "nope"})
    row = await (await db.execute("SELECT * FROM webhook_events")).fetchone()
    assert row["status"] == "dead" and row["next_retry_at"] is None and "max attempts" in row["last_error"]


async def test_id_less_payload_gets_a_deterministic_id_and_deduplicates(client):
    payload = {"status": "pending", "amount": 5}
    first = (await (await post(client, payload)).json())["data"]
    body, _ = mock_delivery(payload)
    assert first["event"]["event_id"] == "gen_" + hashlib.sha256(body).hexdigest()[:32]
    assert first["event"]["event_id_generated"] is True
    second = (await (await post(client, payload)).json())["data"]
    assert second["result"]["duplicate"] is True


async def test_our_request_id_is_never_the_event_id(client):
    body, headers = mock_delivery({"status": "pending"})
    first = await client.post(URL, data=body, headers={**headers, "X-Request-ID": "req-1"})
    second = await client.post(URL, data=body, headers={**headers, "X-Request-ID": "req-2"})
    assert (await second.json())["data"]["result"]["duplicate"] is True
    assert (await first.json())["data"]["event"]["event_id"].startswith("gen_")


@pytest.mark.parametrize(
    "headers, body, status, code",
    [
        (
            {"Content-Type": "application/json", "X-Mock-Signature": "00" * 32},
            b'{"id":"x"}',
            401,
            "invalid_signature",
        ),
        ({"Content-Type": "application/json"}, b'{"id":"x"}', 401, "invalid_signature"),
        ({"Content-Type": "text/plain"}, b'{"id":"x"}', 415, "unsupported_media_type"),
        ({"Content-Type": "application/json"}, b"   ", 400, "empty_payload"),
    ],
)
async def test_gate_rejections(client, db, headers, body, status, code):
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == status
    assert resp.content_type == "application/json"
    assert (await resp.json())["error"]["code"] == code
    assert (await (await db.execute("SELECT count(*) AS n FROM webhook_events")).fetchone())["n"] == 0


async def test_wrong_secret_is_401(client):
    assert (await post(client, {"id": "evt_x"}, secret="other-secret")).status == 401


async def test_one_byte_tamper_is_401(client):
    body, headers = mock_delivery({"id": "evt_t", "status": "succeeded"})
    tampered = body.replace(b"succeeded", b"succeedee")
    assert (await client.post(URL, data=tampered, headers=headers)).status == 401


async def test_invalid_json_after_a_valid_signature_is_400(client):
    body = b"{not json"
    _, headers = mock_delivery({})
    import hmac

    headers["X-Mock-Signature"] = hmac.new(MOCK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_payload"


async def test_unknown_and_disabled_providers_are_404(make_client, make_settings):
    client = await make_client(make_settings(TENRUSL_PROVIDERS_ALLOWLIST="mock"))
    for name in ("unknown", "stripe"):
        resp = await client.post(
            f"/api/v1/webhooks/{name}", data=b"{}", headers={"Content-Type": "application/json"}
        )
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "unknown_provider"


async def test_size_cap_applies_to_declared_and_to_actual_bytes(make_client, make_settings):
    client = await make_client(make_settings(TENRUSL_WEBHOOK_MAX_PAYLOAD_BYTES="1024"))
    body, headers = mock_delivery({"id": "big", "pad": "x" * 2000})
    resp = await client.post(URL, data=body, headers=headers)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "payload_too_large"

    async def chunks():  # no Content-Length: chunked transfer, the cap counts what is read
        for _ in range(4):
            yield b"x" * 400

    resp = await client.post(URL, data=chunks(), headers=headers)
    assert resp.status == 413


async def test_overlong_event_id_is_hashed_not_rejected_and_still_deduplicates(client):
    long_id = "e" * 300
    first = await post(client, {"id": long_id, "type": "t" * 300})
    assert first.status == 202
    event = (await first.json())["data"]["event"]
    assert event["event_id"] == "h_" + hashlib.sha256(long_id.encode()).hexdigest()
    assert event["event_id_source"] == "payload:hashed" and len(event["type"]) == 191
    again = await post(client, {"id": long_id, "type": "t" * 300})
    assert (await again.json())["data"]["result"]["duplicate"] is True


async def test_compat_prefix_reaches_the_same_route(client):
    body, headers = mock_delivery({"id": "evt_compat"})
    assert (await client.post("/api/webhooks/mock", data=body, headers=headers)).status == 202
