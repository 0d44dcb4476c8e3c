"""Every hostile request of issue 8, one table row each: the answer, its JSON envelope, and for a
signed webhook the stored row (raw bytes exact, repairs listed) and a duplicate on redelivery.

The property tests (test_hostile_properties.py) look for the next case; this table pins the known
ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from receiver.keys import METRICS
from receiver.metrics import Metrics
from receiver.middlewares import MIDDLEWARES
from tenrusl.db import open_pool
from tenrusl.errors import UnstorableText
from tenrusl.store import Store
from tests.conftest import ADMIN_KEY, MOCK_SECRET
from tests.receiver.helpers import create_payment

WEBHOOK = "/api/v1/webhooks/mock"
ADMIN = {"X-Admin-Key": ADMIN_KEY}
DEEP = b"[" * 10_000 + b"]" * 10_000


def signed(body: bytes) -> dict[str, str]:
    signature = hmac.new(MOCK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Mock-Signature": signature}


# (case, body, repairs listed on the event, the event id we expect: None = the payload's own)
SIGNED_STORED = [
    ("nul_in_id", b'{"id":"evt_\\u0000_a","type":"payment.succeeded"}', ["nul_character"], "hashed"),
    ("nul_in_type", b'{"id":"evt_nul_type","type":"pay\\u0000ment"}', ["nul_character"], None),
    ("nul_in_key", b'{"id":"evt_nul_key","k\\u0000ey":1}', ["nul_character"], None),
    ("nul_in_value", b'{"id":"evt_nul_value","note":"a\\u0000b"}', ["nul_character"], None),
    ("nul_in_reference", b'{"id":"evt_nul_ref","provider_ref":"sim_\\u0000"}', ["nul_character"], None),
    ("nan", b'{"id":"evt_nan","amount":NaN}', ["non_finite_number"], None),
    ("infinity", b'{"id":"evt_inf","amount":Infinity}', ["non_finite_number"], None),
    ("minus_infinity", b'{"id":"evt_minf","amount":-Infinity}', ["non_finite_number"], None),
    ("overflow_1e400", b'{"id":"evt_1e400","amount":1e400}', ["non_finite_number"], None),
    ("lone_surrogate_value", b'{"id":"evt_sur","note":"\\ud800"}', ["unpaired_surrogate"], None),
    ("lone_surrogate_id", b'{"id":"evt_\\udfff","status":"paid"}', ["unpaired_surrogate"], "hashed"),
    ("lone_surrogate_key", b'{"id":"evt_sur_key","\\udc80":true}', ["unpaired_surrogate"], None),
    ("raw_surrogate_bytes", b'{"id":"evt_raw_sur","note":"\xed\xa0\x80"}', ["unpaired_surrogate"], None),
    ("integer_5000_digits", b'{"id":"evt_long_int","n":' + b"9" * 5000 + b"}", ["number_too_long"], None),
    ("duplicate_key_drops_the_nan", b'{"id":"evt_dup_key","x":NaN,"x":1}', [], None),
    (
        "everything_at_once",
        b'{"id":"\\u0000","t\\ud800":[NaN,Infinity,1e999,"\\u0000"]}',
        ["non_finite_number", "nul_character", "unpaired_surrogate"],
        "hashed",
    ),
]


@pytest.mark.parametrize(
    ("body", "issues", "id_kind"), [c[1:] for c in SIGNED_STORED], ids=[c[0] for c in SIGNED_STORED]
)
async def test_a_signed_webhook_is_stored_whatever_it_holds(client, db, body, issues, id_kind):
    resp = await client.post(WEBHOOK, data=body, headers=signed(body))
    assert resp.status == 202, await resp.text()
    data = (await resp.json())["data"]
    assert data["result"]["persisted"] is True and data["result"]["duplicate"] is False
    assert data["result"]["payload_issues"] == issues
    event_id = data["event"]["event_id"]
    if id_kind == "hashed":
        assert event_id.startswith("h_") and data["event"]["event_id_source"].endswith(":hashed")
    row = await (
        await db.execute(
            "SELECT * FROM webhook_events WHERE provider = 'mock' AND event_id = %s", (event_id,)
        )
    ).fetchone()
    assert bytes(row["payload_raw"]) == body  # exactly what was signed
    assert row["payload_issues"] == issues
    stored = json.dumps(row["payload"])
    assert "\\u0000" not in stored and "NaN" not in stored.replace('"NaN"', "")
    again = await client.post(WEBHOOK, data=body, headers=signed(body))
    assert again.status == 202
    result = (await again.json())["data"]
    assert result["result"]["duplicate"] is True and result["event"]["event_id"] == event_id
    count = await (
        await db.execute("SELECT count(*) AS n, max(deliveries) AS d FROM webhook_events")
    ).fetchone()
    assert (count["n"], count["d"]) == (1, 2)


async def test_repaired_payload_keeps_what_can_be_kept(client, db):
    body = b'{"id":"evt_keep","a\\u0000":"x\\ud800y","n":[NaN,-Infinity,1e400,1.5],"ok":"fine"}'
    resp = await client.post(WEBHOOK, data=body, headers=signed(body))
    assert resp.status == 202
    row = await (
        await db.execute("SELECT payload FROM webhook_events WHERE event_id = 'evt_keep'")
    ).fetchone()
    assert row["payload"] == {
        "id": "evt_keep",
        "a\ufffd": "x\ufffdy",
        "n": ["NaN", "-Infinity", "1e400", 1.5],
        "ok": "fine",
    }


async def test_nul_and_surrogate_ids_hash_apart_from_each_other_and_from_plain_ids(client):
    ids = set()
    for raw in (b'"a\\u0000"', b'"a\\ud800"', b'"a\\ufffd"', b'"a"'):
        body = b'{"id":' + raw + b"}"
        resp = await client.post(WEBHOOK, data=body, headers=signed(body))
        assert resp.status == 202
        data = (await resp.json())["data"]
        assert data["result"]["duplicate"] is False
        ids.add(data["event"]["event_id"])
    assert len(ids) == 4 and {"a", "a\ufffd"} < ids


async def test_a_signed_event_naming_a_payment_is_applied_even_with_repairs_elsewhere(client):
    payment = await create_payment(client)
    body = json.dumps(
        {"id": "evt_applied", "status": "paid", "provider_ref": payment["provider_ref"], "x": float("nan")}
    ).encode()
    resp = await client.post(WEBHOOK, data=body, headers=signed(body))
    result = (await resp.json())["data"]["result"]
    assert (
        resp.status == 202 and result["applied"] is True and result["payload_issues"] == ["non_finite_number"]
    )


async def test_events_needing_review_are_listed_and_filtered(client):
    for body in (b'{"id":"evt_plain"}', b'{"id":"evt_odd","v":NaN}'):
        assert (await client.post(WEBHOOK, data=body, headers=signed(body))).status == 202
    resp = await client.admin.get("/api/v1/admin/webhook-events?needs_review=true", headers=ADMIN)
    body = await resp.json()
    assert [(e["event_id"], e["payload_issues"]) for e in body["data"]] == [
        ("evt_odd", ["non_finite_number"])
    ]
    resp = await client.admin.get("/api/v1/admin/webhook-events?needs_review=false", headers=ADMIN)
    assert [e["event_id"] for e in (await resp.json())["data"]] == ["evt_plain"]


JSON = {"Content-Type": "application/json"}


def webhook(body: bytes) -> tuple[str, str, dict[str, str], bytes]:
    return "POST", WEBHOOK, signed(body), body


def payment(body: bytes | str, headers: dict[str, str] = JSON) -> tuple[str, str, dict[str, str], bytes]:
    return "POST", "/api/v1/payments", headers, body.encode() if isinstance(body, str) else body


def amount(value: str) -> tuple[str, str, dict[str, str], bytes]:
    return payment(json.dumps({"provider": "mock", "amount": value}))


def admin(path: str, method: str = "GET") -> tuple[str, str, dict[str, str], None]:
    return method, "/api/v1/admin/" + path, ADMIN, None


def get(path: str, method: str = "GET") -> tuple[str, str, dict[str, str], None]:
    return method, path, {}, None


NESTED_300 = b"[" * 300 + b"]" * 300
# (case, (method, path, headers, body), status, error code, field named in error.fields)
REJECTED: list[tuple[str, tuple[str, str, dict[str, str], bytes | None], int, str, str | None]] = [
    ("signed_webhook_nested_10000_deep", webhook(b'{"a":' + DEEP + b"}"), 400, "json_too_deep", None),
    ("signed_webhook_nested_300_deep", webhook(b'{"a":' + NESTED_300 + b"}"), 400, "json_too_deep", None),
    ("signed_webhook_not_json", webhook(b"{not json"), 400, "invalid_payload", None),
    ("signed_webhook_not_utf8", webhook(b'{"id":"\xff"}'), 400, "invalid_payload", None),
    ("signed_webhook_raw_control_character", webhook(b'{"id":"a\x01"}'), 400, "invalid_payload", None),
    ("payment_nested_10000_deep", payment(DEEP), 400, "json_too_deep", None),
    (
        "payment_meta_nested_300_deep",
        payment(b'{"provider":"mock","amount":1,"meta":' + NESTED_300 + b"}"),
        400,
        "json_too_deep",
        None,
    ),
    (
        "payment_nul_in_description",
        payment(b'{"provider":"mock","amount":1,"description":"a\\u0000b"}'),
        422,
        "validation_failed",
        "description",
    ),
    (
        "payment_surrogate_in_description",
        payment(b'{"provider":"mock","amount":1,"description":"\\ud800"}'),
        422,
        "validation_failed",
        "description",
    ),
    (
        "payment_nul_in_meta_value",
        payment(b'{"provider":"mock","amount":1,"meta":{"a":"\\u0000"}}'),
        422,
        "validation_failed",
        "meta",
    ),
    (
        "payment_nul_in_meta_key",
        payment(b'{"provider":"mock","amount":1,"meta":{"\\u0000":1}}'),
        422,
        "validation_failed",
        "meta",
    ),
    ("payment_amount_superscript_two", amount("\u00b2"), 422, "validation_failed", "amount"),
    ("payment_amount_one_circled_one", amount("1\u2460"), 422, "validation_failed", "amount"),
    ("payment_amount_fullwidth_123", amount("\uff11\uff12\uff13"), 422, "validation_failed", "amount"),
    ("payment_amount_arabic_indic_123", amount("\u0661\u0662\u0663"), 422, "validation_failed", "amount"),
    ("payment_amount_5000_digit_string", amount("9" * 5000), 422, "validation_failed", "amount"),
    ("payment_amount_20_digit_string", amount("9" * 20), 422, "validation_failed", "amount"),
    (
        "payment_amount_5000_digit_number",
        payment('{"provider":"mock","amount":' + "9" * 5000 + "}"),
        400,
        "invalid_json",
        None,
    ),
    ("payment_amount_nan", payment('{"provider":"mock","amount":NaN}'), 400, "invalid_json", None),
    (
        "payment_meta_1e400",
        payment('{"provider":"mock","amount":1,"meta":{"x":1e400}}'),
        400,
        "invalid_json",
        None,
    ),
    (
        "payment_provider_kelvin_sign",
        payment('{"provider":"moc\u212a","amount":1}'),
        422,
        "validation_failed",
        "provider",
    ),
    (
        "payment_without_content_type",
        payment('{"provider":"mock","amount":1}', {}),
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "payment_as_text_plain",
        payment('{"provider":"mock","amount":1}', {"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
        None,
    ),
    (
        "payment_broken_gzip_body",
        payment(b"not gzip at all", {**JSON, "Content-Encoding": "gzip"}),
        400,
        "malformed_request",
        None,
    ),
    (
        "signed_webhook_broken_deflate_body",
        ("POST", WEBHOOK, {**signed(b"xx"), "Content-Encoding": "deflate"}, b"xx"),
        400,
        "malformed_request",
        None,
    ),
    ("admin_payments_page_20_digits", admin("payments?page=" + "9" * 20), 422, "validation_failed", "page"),
    (
        "admin_payments_page_beyond_bigint_offset",
        admin("payments?page=92233720368547758"),
        422,
        "validation_failed",
        "page",
    ),
    (
        "admin_payments_page_5000_digits",
        admin("payments?page=" + "9" * 5000),
        422,
        "validation_failed",
        "page",
    ),
    ("admin_payments_page_arabic_indic_one", admin("payments?page=%D9%A1"), 422, "validation_failed", "page"),
    ("admin_payments_page_superscript_two", admin("payments?page=%C2%B2"), 422, "validation_failed", "page"),
    ("admin_payments_page_zero", admin("payments?page=0"), 422, "validation_failed", "page"),
    ("admin_payments_page_negative", admin("payments?page=-1"), 422, "validation_failed", "page"),
    ("admin_payments_per_page_zero", admin("payments?per_page=0"), 422, "validation_failed", "per_page"),
    (
        "admin_payments_per_page_fullwidth_one",
        admin("payments?per_page=%EF%BC%91"),
        422,
        "validation_failed",
        "per_page",
    ),
    ("admin_payments_nul_in_q", admin("payments?q=a%00b"), 422, "validation_failed", "q"),
    ("admin_payments_nul_in_provider", admin("payments?provider=%00"), 422, "validation_failed", "provider"),
    ("admin_payments_nul_in_status", admin("payments?status=%00"), 422, "validation_failed", "status"),
    (
        "admin_payments_end_date_9999_12_31",
        admin("payments?created_to=9999-12-31"),
        422,
        "validation_failed",
        "created_to",
    ),
    (
        "admin_payments_fullwidth_date",
        admin("payments?created_from=%EF%BC%92025-01-01"),
        422,
        "validation_failed",
        "created_from",
    ),
    (
        "admin_events_page_20_digits",
        admin("webhook-events?page=" + "9" * 20),
        422,
        "validation_failed",
        "page",
    ),
    ("admin_events_nul_in_q", admin("webhook-events?q=%00"), 422, "validation_failed", "q"),
    (
        "admin_events_nul_in_provider",
        admin("webhook-events?provider=x%00"),
        422,
        "validation_failed",
        "provider",
    ),
    ("admin_events_nul_in_status", admin("webhook-events?status=%00"), 422, "validation_failed", "status"),
    (
        "admin_events_end_date_9999_12_31",
        admin("webhook-events?received_to=9999-12-31"),
        422,
        "validation_failed",
        "received_to",
    ),
    (
        "admin_events_needs_review_maybe",
        admin("webhook-events?needs_review=maybe"),
        422,
        "validation_failed",
        "needs_review",
    ),
    ("admin_retry_nul_in_id", admin("webhook-events/a%00b/retry", "POST"), 404, "not_found", None),
    (
        "admin_retry_force_null",
        admin("webhook-events/x/retry?force=null", "POST"),
        422,
        "validation_failed",
        "force",
    ),
    ("payment_get_nul_in_id", get("/api/v1/payments/a%00b"), 404, "payment_not_found", None),
    ("payment_get_trailing_newline", get("/api/v1/payments/abc%0A"), 404, "payment_not_found", None),
    (
        "payment_status_nul_in_ref",
        get("/api/v1/payments/mock/sim%00x/status"),
        404,
        "payment_not_found",
        None,
    ),
    ("options_unknown_provider", get("/api/v1/webhooks/nope", "OPTIONS"), 404, "unknown_provider", None),
]


@pytest.mark.parametrize(
    ("call", "status", "code", "field"), [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED]
)
async def test_hostile_request_gets_a_json_4xx(client, call, status, code, field):
    method, path, headers, body = call
    listener = client.admin if "/admin/" in path else client  # the admin API is on the second port
    resp = await listener.request(
        method, path, headers=headers, data=body, skip_auto_headers=["Content-Type"]
    )
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    error = (await resp.json())["error"]
    assert error["code"] == code and error["message"]
    if field is not None:
        assert field in error["fields"], error
    assert (await client.get("/up")).status == 200  # and the server is still up


async def test_per_page_above_the_maximum_is_the_maximum_as_documented(client):
    resp = await client.admin.get("/api/v1/admin/payments?per_page=" + "9" * 5000, headers=ADMIN)
    assert resp.status == 200 and (await resp.json())["meta"]["per_page"] == 100


async def test_options_on_the_webhook_routes_is_204_with_allow(client):
    for path in ("/api/v1/webhooks/mock", "/api/webhooks/stripe"):
        resp = await client.options(path)
        assert resp.status == 204 and resp.headers["Allow"] == "OPTIONS, POST"
        assert await resp.read() == b""


async def test_force_accepts_the_documented_booleans(client, db):
    body = b'{"id":"evt_unmatched"}'  # names no payment: stored as failed
    assert (await client.post(WEBHOOK, data=body, headers=signed(body))).status == 202
    row = await (await db.execute("SELECT id FROM webhook_events")).fetchone()
    for value in ("false", "0", "no", "TRUE", "Yes", "1", ""):
        resp = await client.admin.post(
            f"/api/v1/admin/webhook-events/{row['id']}/retry?force={value}", headers=ADMIN
        )
        assert resp.status == 202, value


async def test_a_payment_amount_of_ascii_digits_is_still_accepted(client):
    resp = await client.post("/api/v1/payments", json={"provider": "mock", "amount": " 0150000 "})
    assert resp.status == 201 and (await resp.json())["data"]["amount"] == 150000


async def test_the_store_refuses_unstorable_text_before_any_sql(settings):
    """The net under every input check: such text never reaches psycopg (a DataError, a 500)."""
    async with open_pool(settings) as pool:
        store = Store(pool)
        with pytest.raises(UnstorableText) as caught:
            await store.get_payment("a\x00b")
        assert (caught.value.query, caught.value.param) == ("get_payment", "id")
        with pytest.raises(UnstorableText):
            await store.get_event("\ud800")
        assert await store.get_payment("a\ufffdb") is None  # repaired text is fine


async def test_unstorable_text_that_slipped_through_is_a_400_not_a_500() -> None:
    async def handler(request: web.Request) -> web.Response:
        raise UnstorableText("some_query", "some_param")

    app = web.Application(middlewares=MIDDLEWARES)
    app[METRICS] = Metrics()
    app.router.add_get("/x", handler)
    async with TestClient(TestServer(app)) as http:
        resp = await http.get("/x")
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "unstorable_text"
