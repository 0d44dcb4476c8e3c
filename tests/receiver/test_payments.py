"""Payments API: validation, create, read, status lookup, admin list."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_KEY
from tests.receiver.helpers import create_payment, mock_delivery


async def test_create_returns_pending_simulated_payment(client):
    resp = await client.post(
        "/api/v1/payments",
        json={
            "provider": "Mock",
            "amount": "150000",
            "currency": "usd",
            "description": "order 7",
            "metadata": {"order": 7},
        },
    )
    assert resp.status == 201
    data = (await resp.json())["data"]
    assert data["provider"] == "mock"
    assert data["provider_ref"].startswith("sim_mock_") and len(data["provider_ref"]) == len("sim_mock_") + 26
    assert data["amount"] == 150000 and data["currency"] == "USD" and data["status"] == "pending"
    assert data["description"] == "order 7" and data["meta"] == {"order": 7}
    assert data["id"] == data["id"].lower() and len(data["id"]) == 26
    assert resp.headers["Idempotency-Key"].startswith("fp_")


async def test_currency_defaults_to_idr_and_meta_to_object(client):
    data = await create_payment(client, amount=5)
    assert data["currency"] == "IDR" and data["meta"] == {}


@pytest.mark.parametrize("provider, prefix", [("lemonsqueezy", "sim_ls_"), ("amazon_bwp", "sim_amzbwp_")])
async def test_abbreviated_reference_prefixes(make_client, make_settings, provider, prefix):
    client = await make_client(make_settings(TENRUSL_PROVIDERS_ALLOWLIST=f"mock,{provider}"))
    assert (await create_payment(client, provider=provider))["provider_ref"].startswith(prefix)


@pytest.mark.parametrize(
    "body, fields",
    [
        ({}, {"provider", "amount"}),
        ({"provider": "nope", "amount": 1}, {"provider"}),
        ({"provider": "mock", "amount": 0}, {"amount"}),
        ({"provider": "mock", "amount": 1.5}, {"amount"}),
        ({"provider": "mock", "amount": True}, {"amount"}),
        ({"provider": "mock", "amount": 10**20}, {"amount"}),
        ({"provider": "mock", "amount": 1, "currency": "RUPIAH"}, {"currency"}),
        ({"provider": "mock", "amount": 1, "description": "x" * 256}, {"description"}),
        ({"provider": "mock", "amount": 1, "meta": "text"}, {"meta"}),
    ],
)
async def test_validation_errors_are_422_per_field(client, body, fields):
    resp = await client.post("/api/v1/payments", json=body)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "validation_failed"
    assert set(error["fields"]) == fields


async def test_malformed_json_is_400_and_wrong_type_415(client):
    resp = await client.post(
        "/api/v1/payments", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    resp = await client.post("/api/v1/payments", data=b"a=1", headers={"Content-Type": "text/plain"})
    assert resp.status == 415 and (await resp.json())["error"]["code"] == "unsupported_media_type"


async def test_get_payment_by_id_and_by_reference(client):
    created = await create_payment(client)
    for path in (f"/api/v1/payments/{created['id']}", f"/api/payments/{created['id']}"):
        resp = await client.get(path)
        assert resp.status == 200
        data = (await resp.json())["data"]
        assert data["id"] == created["id"] and data["webhook_events"] == []
    resp = await client.get(f"/api/v1/payments/mock/{created['provider_ref']}/status")
    assert resp.status == 200 and (await resp.json())["data"]["id"] == created["id"]


async def test_missing_payments_are_404_json(client):
    resp = await client.get("/api/v1/payments/01doesnotexist")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "payment_not_found"
    resp = await client.get("/api/v1/payments/mock/sim_mock_nope/status")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "payment_not_found"
    resp = await client.get("/api/v1/payments/notaprovider/ref/status")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


async def test_admin_list_requires_a_configured_key(make_client, make_settings):
    client = await make_client(make_settings(TENRUSL_ADMIN_KEY=""))
    resp = await client.admin.get("/api/v1/admin/payments")
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "admin_not_configured"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Admin-Key": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {ADMIN_KEY}"},
    ],
)
async def test_admin_list_rejects_missing_or_wrong_keys(client, headers):
    resp = await client.admin.get("/api/v1/admin/payments", headers=headers)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "unauthorized"


async def test_admin_list_filters_and_paginates(client):
    for amount in range(1, 6):
        await create_payment(client, amount=amount)
    target = await create_payment(client, amount=99)
    headers = {"X-Admin-Key": ADMIN_KEY}
    resp = await client.admin.get("/api/v1/admin/payments?per_page=2&page=2", headers=headers)
    assert resp.status == 200
    body = await resp.json()
    assert body["meta"] == {"current_page": 2, "per_page": 2, "total": 6, "last_page": 3}
    assert len(body["data"]) == 2
    resp = await client.admin.get("/api/v1/admin/payments?per_page=2&page=1", headers=headers)
    assert (await resp.json())["data"][0]["id"] == target["id"]  # newest first
    resp = await client.admin.get("/api/v1/admin/payments?per_page=2&page=9", headers=headers)
    body = await resp.json()  # past the last page: no rows, and still the total
    assert body["data"] == [] and body["meta"] == {
        "current_page": 9,
        "per_page": 2,
        "total": 6,
        "last_page": 3,
    }
    resp = await client.admin.get(
        f"/api/admin/payments?q={target['provider_ref'][-8:]}",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert [p["id"] for p in (await resp.json())["data"]] == [target["id"]]
    resp = await client.admin.get("/api/v1/admin/payments?status=succeeded", headers=headers)
    assert (await resp.json())["meta"]["total"] == 0
    resp = await client.admin.get(
        "/api/v1/admin/payments?created_from=2000-01-01&created_to=2999-12-31&per_page=500", headers=headers
    )
    body = await resp.json()
    assert body["meta"]["total"] == 6 and body["meta"]["per_page"] == 100
    resp = await client.admin.get("/api/v1/admin/payments?created_from=yesterday", headers=headers)
    assert resp.status == 422 and "created_from" in (await resp.json())["error"]["fields"]


async def test_demo_key_is_refused_in_production(make_client, make_settings):
    demo = {"TENRUSL_ADMIN_KEY": "", "TENRUSL_ADMIN_DEMO_KEY": "demo-key-123"}
    dev = await make_client(make_settings(**demo))
    assert (
        await dev.admin.get("/api/v1/admin/payments", headers={"X-Admin-Key": "demo-key-123"})
    ).status == 200
    prod = await make_client(
        make_settings(**demo, TENRUSL_ENV="production", TENRUSL_PROVIDERS_ALLOWLIST="mock")
    )
    assert (
        await prod.admin.get("/api/v1/admin/payments", headers={"X-Admin-Key": "demo-key-123"})
    ).status == 503


async def test_ulids_are_printed_in_lower_case_and_old_upper_case_references_still_work(client, db):
    """One form for every ULID we print; rows written before that rule stay readable."""
    created = await create_payment(client)
    ulid = created["provider_ref"].removeprefix("sim_mock_")
    assert ulid == ulid.lower() and created["id"] == created["id"].lower()
    resp = await client.get(f"/api/v1/payments/{created['id'].upper()}")  # ULIDs ignore case
    assert resp.status == 200 and (await resp.json())["data"]["id"] == created["id"]
    # A payment stored with the old upper-case reference: found by its exact value, and settled
    # by a webhook that names it.
    old_ref = "sim_mock_01HZX3K8Q2W5V7Y9B1C3D5F7G9"
    await db.execute(
        "INSERT INTO payments (id, provider, provider_ref, amount, currency) "
        "VALUES ('01hzx3k8q2w5v7y9b1c3d5f7g0', 'mock', %s, 1000, 'IDR')",
        (old_ref,),
    )
    body, headers = mock_delivery({"id": "evt_old_ref", "status": "succeeded", "provider_ref": old_ref})
    resp = await client.post("/api/v1/webhooks/mock", data=body, headers=headers)
    assert resp.status == 202 and (await resp.json())["data"]["result"]["applied"] is True
    resp = await client.get(f"/api/v1/payments/mock/{old_ref}/status")
    assert resp.status == 200 and (await resp.json())["data"]["status"] == "succeeded"
