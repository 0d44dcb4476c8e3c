"""Property tests: hostile input on every route never gets a 5xx, every error is the JSON envelope,
and a correctly signed webhook is always stored (the row checked in PostgreSQL) and answered 202,
its redelivery a duplicate.

Generators are in tests/hostile.py. Example counts are per test (``EXAMPLES``); set
``TENRUSL_PROPERTY_SCALE=10`` to run ten times as many (the default keeps the whole module well
under a minute on a laptop). A failure prints the shrunk example: add it to the table in
test_hostile_input.py once fixed.
"""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receiver.keys import SETTINGS
from receiver.providers import provider_class
from receiver.simulate.sandbox import demo_secrets
from tenrusl.constants import PROVIDERS
from tests.conftest import ADMIN_KEY
from tests.hostile import (
    json_number_text,
    json_string_text,
    json_value_text,
    path_segment,
    percent_bytes,
    printable_header_text,
    query_value,
    same_json,
    unicode_digits,
    webhook_body,
    webhook_oracle,
)
from tests.rawhttp import request, send_raw

SCALE = float(os.environ.get("TENRUSL_PROPERTY_SCALE", "1"))
EXAMPLES = {
    "signed_webhook": 150,
    "unsigned_webhook": 80,
    "create_payment": 150,
    "read_payment": 100,
    "admin_lists": 200,
    "admin_retry": 100,
    "health": 60,
    "raw_header_bytes": 100,
}


def budget(name: str) -> Any:
    return settings(
        max_examples=max(1, int(EXAMPLES[name] * SCALE)),
        deadline=None,
        # One live server per test, reused across examples on purpose (state is reset per example).
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


# Providers whose sending side signs the body as given (no fields added, no form encoding).
SIGNING = ("mock", "stripe", "lemonsqueezy", "airwallex", "tripay", "doku", "xendit", "oy", "payoneer")
ADMIN = {"X-Admin-Key": ADMIN_KEY}
_REQUEST_ID = re.compile(r"[A-Za-z0-9\-_.:]+")


# aiohttp refuses a request line over 8190 bytes with a 400 (malformed_request), before routing.
MAX_LINE = 8190


async def assert_answer(resp: Any, allowed: set[int]) -> dict[str, Any] | None:
    """Never a 5xx, one of ``allowed``, and any error is the JSON envelope with a stable code."""
    line = len(resp.method) + len(resp.url.raw_path_qs) + len(" HTTP/1.1") + 1
    if line > MAX_LINE + 100:
        allowed = {400}
    elif line > MAX_LINE - 100:  # about the limit: either answer, but a 400 must be that one
        allowed = {*allowed, 400}
    text = await resp.text()
    assert resp.status < 500, (resp.status, text[:500])
    assert resp.status in allowed, (resp.status, text[:500])
    assert _REQUEST_ID.fullmatch(resp.headers.get("X-Request-ID", "")), resp.headers
    if resp.status >= 400:
        assert resp.content_type == "application/json", text[:200]
        body = await resp.json()
        assert set(body) == {"error"} and isinstance(body["error"]["code"], str), body
        assert re.fullmatch(r"[a-z_]+", body["error"]["code"]) and body["error"]["message"], body
        if line > MAX_LINE - 100 and resp.status == 400:
            assert body["error"]["code"] == "malformed_request", body
        return body
    return await resp.json() if resp.content_type == "application/json" else None


@pytest.fixture
async def signing_client(make_client, make_settings):
    return await make_client(make_settings(**demo_secrets(), TENRUSL_TRUSTED_PROXIES="*"))


@budget("signed_webhook")
@given(body=webhook_body(), provider=st.sampled_from(SIGNING), user_agent=st.none() | printable_header_text())
async def test_a_correctly_signed_webhook_is_stored_or_refused_only_when_not_json(
    signing_client, db, body, provider, user_agent
):
    await db.execute("DELETE FROM webhook_events")
    client = signing_client
    cls = provider_class(provider)
    path = f"/api/v1/webhooks/{provider}"
    credentials = cls.signing_credentials(client.server.app[SETTINGS])
    delivery = cls.sign(body, credentials, now=time.time(), path=path)
    headers = dict(delivery.headers)
    if user_agent is not None:
        headers["User-Agent"] = user_agent
    status, code, issues = webhook_oracle(body)

    resp = await client.post(path, data=delivery.body, headers=headers)
    answer = await assert_answer(resp, {status})
    assert answer is not None
    if status == 400:
        assert answer["error"]["code"] == code
        return
    data = answer["data"]
    assert data["result"]["persisted"] is True and data["result"]["duplicate"] is False
    assert set(data["result"]["payload_issues"]) == issues, (data, issues)
    row = await (
        await db.execute(
            "SELECT payload_raw, payload, payload_issues FROM webhook_events WHERE provider = %s AND event_id = %s",
            (provider, data["event"]["event_id"]),
        )
    ).fetchone()
    assert row is not None and bytes(row["payload_raw"]) == body
    assert row["payload_issues"] == data["result"]["payload_issues"]
    if not issues:
        # (a duplicate key may have dropped a number Python cannot convert: keep it as text)
        sent = json.loads(body, parse_int=lambda t: int(t) if len(t) <= 4300 else t)
        assert same_json(row["payload"], sent)
    again = await client.post(path, data=delivery.body, headers=headers)
    repeat = await assert_answer(again, {202})
    assert repeat is not None and repeat["data"]["result"]["duplicate"] is True
    assert repeat["data"]["event"]["event_id"] == data["event"]["event_id"]


@budget("unsigned_webhook")
@given(
    body=webhook_body(),
    provider=st.sampled_from((*PROVIDERS, "unknown", "MOCK", "mock%00", "a" * 300)),
    content_type=st.sampled_from(
        ("application/json", "application/x-www-form-urlencoded", "text/plain", "application/vnd.x+json", "")
    ),
    extra=st.dictionaries(
        st.sampled_from(
            (
                "X-Mock-Signature",
                "Stripe-Signature",
                "Authorization",
                "X-Event-Id",
                "X-Forwarded-For",
                "X-Request-ID",
                "Signature",
                "x-callback-token",
                "Paddle-Signature",
                "X-SIGNATURE",
                "X-TIMESTAMP",
                "Request-Timestamp",
            )
        ),
        printable_header_text(),
        max_size=4,
    ),
)
async def test_an_unverified_webhook_is_never_accepted_and_never_a_5xx(
    signing_client, body, provider, content_type, extra
):
    headers = {"Content-Type": content_type, **extra}
    resp = await signing_client.post(f"/api/v1/webhooks/{provider}", data=body, headers=headers)
    await assert_answer(resp, {400, 401, 404, 405, 413, 415})


@st.composite
def payment_body(draw: st.DrawFn) -> bytes:
    members = []
    if draw(st.booleans()):
        members.append(
            (
                '"provider"',
                draw(
                    st.one_of(
                        st.sampled_from(('"mock"', '" MOCK "', '"stripe"')),
                        json_string_text(),
                        json_value_text(3),
                    )
                ),
            )
        )
    if draw(st.booleans()):
        amount = st.one_of(
            json_number_text,
            st.integers(1, 10**6).map(lambda n: f'"{n}"'),
            unicode_digits.map(lambda d: f'"{d}"'),
            json_string_text(),
        )
        members.append(('"amount"', draw(amount)))
    for key in ("currency", "description"):
        if draw(st.booleans()):
            members.append((f'"{key}"', draw(st.one_of(json_string_text(), json_value_text(3)))))
    if draw(st.booleans()):
        members.append((draw(st.sampled_from(('"meta"', '"metadata"'))), draw(json_value_text(12))))
    if draw(st.booleans()):
        depth = draw(st.sampled_from((255, 256, 10_000)))
        members.append(('"deep"', "[" * depth + "]" * depth))
    text = "{" + ",".join(f"{k}:{v}" for k, v in members) + "}"
    if draw(st.integers(0, 9)) == 0:
        text = draw(json_value_text(6))
    return text.encode("utf-8", "surrogatepass")


@budget("create_payment")
@given(
    body=payment_body(),
    content_type=st.sampled_from(
        (
            "application/json",
            "application/json; charset=utf-8",
            "application/problem+json",
            "text/plain",
            None,
        )
    ),
    key=st.none() | printable_header_text(),
)
async def test_creating_a_payment_never_fails_with_a_5xx(client, body, content_type, key):
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if key:
        headers["Idempotency-Key"] = key
    resp = await client.post(
        "/api/v1/payments", data=body, headers=headers, skip_auto_headers=["Content-Type"]
    )
    answer = await assert_answer(resp, {201, 400, 409, 415, 422})
    if resp.status == 201:
        assert answer is not None
        payment = answer["data"]
        assert 1 <= payment["amount"] <= 2**63 - 1 and re.fullmatch(r"[A-Z]{3}", payment["currency"])
        read = await client.get(f"/api/v1/payments/{payment['id']}")
        assert (await assert_answer(read, {200}))["data"]["id"] == payment["id"]


@budget("read_payment")
@given(segment=path_segment, provider=st.sampled_from(("mock", "stripe", "nope", "MOCK")), ref=path_segment)
async def test_reading_payments_by_hostile_ids_is_a_404_never_a_5xx(client, segment, provider, ref):
    await assert_answer(await client.get(f"/api/v1/payments/{segment}"), {200, 404, 405})
    await assert_answer(await client.get(f"/api/v1/payments/{provider}/{ref}/status"), {200, 404, 405})


LIST_PARAMS = {
    "payments": ("page", "per_page", "q", "provider", "status", "created_from", "created_to"),
    "webhook-events": (
        "page",
        "per_page",
        "q",
        "provider",
        "status",
        "received_from",
        "received_to",
        "needs_review",
    ),
}


@budget("admin_lists")
@given(
    which=st.sampled_from(sorted(LIST_PARAMS)),
    params=st.lists(
        st.tuples(
            st.sampled_from(sorted({p for ps in LIST_PARAMS.values() for p in ps} | {"unknown", "page[]"})),
            st.one_of(query_value.map(lambda v: quote(v, safe="")), percent_bytes),
        ),
        max_size=5,
    ),
    authorised=st.booleans(),
)
async def test_admin_lists_answer_200_or_422_naming_the_field(client, which, params, authorised):
    query = "&".join(f"{name}={value}" for name, value in params)
    headers = ADMIN if authorised else {"X-Admin-Key": "wrong"}
    resp = await client.admin.get(f"/api/v1/admin/{which}?{query}", headers=headers)
    answer = await assert_answer(resp, {200, 422} if authorised else {401})
    if resp.status == 422:
        assert answer is not None and set(answer["error"]["fields"]) <= set(LIST_PARAMS[which])
    elif resp.status == 200:
        assert answer is not None and 1 <= answer["meta"]["per_page"] <= 100


@budget("admin_retry")
@given(event_id=path_segment, force=st.none() | query_value.map(lambda v: quote(v, safe="")))
async def test_admin_retry_with_hostile_ids_and_flags_never_fails_with_a_5xx(client, event_id, force):
    suffix = "" if force is None else f"?force={force}"
    resp = await client.admin.post(f"/api/v1/admin/webhook-events/{event_id}/retry{suffix}", headers=ADMIN)
    await assert_answer(resp, {202, 404, 405, 409, 422})


@budget("health")
@given(
    path=st.sampled_from(("/up", "/ready", "admin:/metrics", "/api/openapi.yaml", "admin:/api/openapi.yaml")),
    headers=st.dictionaries(
        st.sampled_from(("X-Request-ID", "X-Correlation-ID", "traceparent", "Accept", "X-Forwarded-For")),
        printable_header_text(),
        max_size=3,
    ),
    query=st.lists(
        st.tuples(st.sampled_from(("a", "page", "")), query_value.map(lambda v: quote(v, safe=""))),
        max_size=3,
    ),
)
async def test_health_routes_answer_whatever_the_headers(client, path, headers, query):
    qs = "&".join(f"{k}={v}" for k, v in query)
    listener = client.admin if path.startswith("admin:") else client
    path = path.removeprefix("admin:")
    resp = await listener.get(f"{path}?{qs}" if qs else path, headers=headers)
    await assert_answer(resp, {200, 400})  # 400: a header value the HTTP parser refuses


header_bytes = st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@budget("raw_header_bytes")
@given(
    name=st.sampled_from(
        (
            b"User-Agent",
            b"X-Request-ID",
            b"X-Event-Id",
            b"X-Forwarded-For",
            b"X-Correlation-ID",
            b"Idempotency-Key",
        )
    ),
    value=header_bytes,
    route=st.sampled_from(("webhook", "payment")),
)
async def test_header_bytes_that_are_not_text_never_cost_a_signed_event(
    signing_client, db, name, value, route
):
    """Raw bytes in headers (not UTF-8, controls): the parser refuses some (400 envelope); every
    other signed webhook is stored (202), and a payment is created (201)."""
    if route == "webhook":
        body = b'{"status":"pending","note":"raw header"}'
        mock = provider_class("mock")
        credentials = mock.signing_credentials(signing_client.server.app[SETTINGS])
        sig = mock.sign(body, credentials, now=time.time(), path="")
        lines = [
            b"POST /api/v1/webhooks/mock HTTP/1.1",
            b"Content-Type: application/json",
            b"X-Mock-Signature: " + sig.headers["X-Mock-Signature"].encode(),
        ]
        expected = 202
    else:
        body = b'{"provider":"mock","amount":1000}'
        lines = [b"POST /api/v1/payments HTTP/1.1", b"Content-Type: application/json"]
        expected = 201
    lines += [name + b": " + value, b"Content-Length: " + str(len(body)).encode()]
    resp = await send_raw(signing_client.port, request(lines, body))
    assert resp is not None and resp.status in (expected, 400), resp
    answer = resp.json()
    if resp.status == 400:
        assert answer["error"]["code"] == "malformed_request"
    elif route == "webhook":
        event_id = answer["data"]["event"]["event_id"]
        row = await (
            await db.execute("SELECT payload_raw FROM webhook_events WHERE event_id = %s", (event_id,))
        ).fetchone()
        assert row is not None and bytes(row["payload_raw"]) == body
