"""Event id, type, payment status and payment reference from realistic payloads, per provider.

The payment reference is the field that names *our* payment (what we passed to the provider),
never the event id (docs/design-notes.md, defect 7); an event without one yields None and is retried.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from tenrusl.providers import provider_spec
from tenrusl.providers.fields import Headers

# (provider, payload, headers, expected (event id, type, status, ref))
EXAMPLES: list[tuple[str, Any, dict[str, str], tuple[str | None, str | None, str, str | None]]] = [
    (
        "stripe",
        {
            "id": "evt_3N",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {"id": "pi_3N", "status": "succeeded", "metadata": {"provider_ref": "sim_s_1"}}
            },
        },
        {},
        ("evt_3N", "payment_intent.succeeded", "succeeded", "sim_s_1"),
    ),
    (
        "stripe",
        {"id": "evt_4", "type": "charge.failed", "data": {"object": {"id": "ch_4", "status": "failed"}}},
        {},
        ("evt_4", "charge.failed", "failed", "ch_4"),
    ),
    (
        "stripe",
        {
            "id": "evt_5",
            "type": "checkout.session.completed",
            "data": {"object": {"id": "cs_5", "payment_status": "paid", "client_reference_id": "sim_s_5"}},
        },
        {},
        ("evt_5", "checkout.session.completed", "succeeded", "sim_s_5"),
    ),
    (
        "paypal",
        {
            "id": "WH-58D",
            "event_type": "PAYMENT.CAPTURE.COMPLETED",
            "resource": {"id": "2GG", "status": "COMPLETED", "custom_id": "sim_pp_1"},
        },
        {},
        ("WH-58D", "PAYMENT.CAPTURE.COMPLETED", "succeeded", "sim_pp_1"),
    ),
    (
        "paypal",
        {
            "id": "WH-9",
            "event_type": "CHECKOUT.ORDER.APPROVED",
            "resource": {"id": "5O1", "status": "APPROVED", "purchase_units": [{"reference_id": "sim_pp_9"}]},
        },
        {},
        ("WH-9", "CHECKOUT.ORDER.APPROVED", "pending", "sim_pp_9"),
    ),
    (
        "paypal",
        {
            "id": "WH-R",
            "event_type": "PAYMENT.CAPTURE.REFUNDED",
            "resource": {"id": "1R", "status": "COMPLETED"},
        },
        {},
        ("WH-R", "PAYMENT.CAPTURE.REFUNDED", "pending", "1R"),
    ),
    (
        "lemonsqueezy",
        {
            "meta": {"event_name": "order_created", "custom_data": {"provider_ref": "sim_ls_1"}},
            "data": {
                "type": "orders",
                "id": "7",
                "attributes": {"status": "paid", "updated_at": "2024-01-01"},
            },
        },
        {},
        ("order_created:orders/7:2024-01-01", "order_created", "succeeded", "sim_ls_1"),
    ),
    (
        "midtrans",
        {
            "transaction_id": "tx-1",
            "order_id": "sim_mt_1",
            "transaction_status": "capture",
            "fraud_status": "challenge",
        },
        {},
        ("tx-1:capture:challenge", "capture", "pending", "sim_mt_1"),
    ),
    (
        "midtrans",
        {"transaction_id": "tx-1", "order_id": "sim_mt_1", "transaction_status": "settlement"},
        {},
        ("tx-1:settlement", "settlement", "succeeded", "sim_mt_1"),
    ),
    (
        "midtrans",
        {"transaction_id": "tx-2", "order_id": "sim_mt_2", "transaction_status": "expire"},
        {},
        ("tx-2:expire", "expire", "failed", "sim_mt_2"),
    ),
    (
        "xendit",
        {"id": "579c8d61", "external_id": "sim_x_1", "status": "PAID"},
        {},
        ("579c8d61", None, "succeeded", "sim_x_1"),
    ),
    (
        "xendit",
        {"event": "payment.failed", "data": {"id": "py-1", "reference_id": "sim_x_2", "status": "FAILED"}},
        {"webhook-id": "whk-1"},
        ("whk-1", "payment.failed", "failed", "sim_x_2"),
    ),
    (
        "tripay",
        {"reference": "T0001", "merchant_ref": "sim_tp_1", "status": "EXPIRED"},
        {"X-Callback-Event": "payment_status"},
        ("T0001:EXPIRED", "payment_status", "failed", "sim_tp_1"),
    ),
    (
        "doku",
        {"order": {"invoice_number": "sim_dk_1"}, "transaction": {"status": "SUCCESS"}},
        {"Request-Id": "doku-req-1", "X-Request-ID": "ours"},
        ("sim_dk_1:SUCCESS", None, "succeeded", "sim_dk_1"),
    ),
    (
        "doku",
        {"order": {"invoice_number": "sim_dk_2"}},
        {"Request-Id": "doku-req-2", "X-Request-ID": "ours"},
        ("doku-req-2", None, "pending", "sim_dk_2"),
    ),
    (
        "dana",
        {
            "originalPartnerReferenceNo": "sim_dn_1",
            "originalReferenceNo": "2024",
            "latestTransactionStatus": "06",
        },
        {"X-EXTERNAL-ID": "ext-9"},
        ("2024:06", None, "failed", "sim_dn_1"),
    ),
    (
        "airwallex",
        {
            "id": "evt_a",
            "name": "payment_intent.succeeded",
            "data": {"object": {"id": "int_1", "merchant_order_id": "sim_aw_1", "status": "SUCCEEDED"}},
        },
        {},
        ("evt_a", "payment_intent.succeeded", "succeeded", "sim_aw_1"),
    ),
    (
        "paddle",
        {
            "event_id": "evt_01",
            "event_type": "transaction.completed",
            "data": {"id": "txn_01", "status": "completed", "custom_data": {"provider_ref": "sim_pd_1"}},
        },
        {},
        ("evt_01", "transaction.completed", "succeeded", "sim_pd_1"),
    ),
    (
        "oy",
        {"trx_id": "OY-1", "partner_trx_id": "sim_oy_1", "status": {"code": "300", "message": "Failed"}},
        {},
        ("OY-1:300", None, "failed", "sim_oy_1"),
    ),
    (
        "payoneer",
        {
            "id": "pn-1",
            "event": "payment.completed",
            "status": "completed",
            "client_reference_id": "sim_pn_1",
        },
        {},
        ("pn-1", "payment.completed", "succeeded", "sim_pn_1"),
    ),
    (
        "amazon_bwp",
        {
            "id": "7bf7",
            "detail-type": "ORDER_COMPLETED",
            "detail": {"orderId": "o-1", "externalId": "sim_bwp_1", "status": "COMPLETED"},
        },
        {},
        ("7bf7", "ORDER_COMPLETED", "succeeded", "sim_bwp_1"),
    ),
    (
        "mock",
        {"id": "evt_m", "type": "payment.paid", "status": "paid", "reference": "sim_m_1"},
        {},
        ("evt_m", "payment.paid", "succeeded", "sim_m_1"),
    ),
]

FORM_EXAMPLES = [
    (
        "skrill",
        "merchant_id=1&transaction_id=sim_sk_1&mb_transaction_id=999&status=2&mb_amount=1&mb_currency=EUR",
        ("999:2", None, "succeeded", "sim_sk_1"),
    ),
    (
        "skrill",
        "merchant_id=1&transaction_id=sim_sk_2&status=-3",
        ("sim_sk_2:-3", None, "failed", "sim_sk_2"),
    ),
    ("skrill", "merchant_id=1&transaction_id=sim_sk_3&status=0", ("sim_sk_3:0", None, "pending", "sim_sk_3")),
    (
        "paddle",
        "alert_id=123&alert_name=payment_succeeded&passthrough=sim_pc_1&order_id=9",
        ("123", "payment_succeeded", "succeeded", "sim_pc_1"),
    ),
]


def request(headers: dict[str, str]) -> Headers:
    """Delivery headers as the receiver hands them over: looked up without regard to case."""
    return CIMultiDictProxy(CIMultiDict(headers))


def extract(name: str, payload: Any, headers: Headers) -> tuple[str | None, str | None, str, str | None]:
    """The core's reading of a notification: no settings, no secrets (the retry runner's view)."""
    spec = provider_spec(name)
    event = spec.event_id(payload, headers)
    return (
        event.value if event else None,
        spec.event_type(payload, headers),
        spec.payment_status(payload),
        spec.payment_ref(payload),
    )


@pytest.mark.parametrize(("name", "payload", "headers", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_json_extraction(name: str, payload: Any, headers: dict[str, str], expected: tuple[Any, ...]) -> None:
    assert extract(name, payload, request(headers)) == expected


@pytest.mark.parametrize(("name", "body", "expected"), FORM_EXAMPLES, ids=[e[0] for e in FORM_EXAMPLES])
def test_form_extraction(name: str, body: str, expected: tuple[Any, ...]) -> None:
    assert extract(name, dict(parse_qsl(body)), request({})) == expected


def test_our_request_id_is_never_an_event_id() -> None:
    """X-Request-ID is our correlation id: an id-less payload gets the body hash, not it."""
    for name in ("mock", "skrill", "lemonsqueezy", "stripe"):
        event = provider_spec(name).event_id({}, request({"X-Request-ID": "req-1"}))
        assert event is None or "req-1" not in event.value


def test_stripe_reference_is_not_the_event_id() -> None:
    payload = {"id": "evt_1", "type": "charge.succeeded", "data": {"object": {"object": "charge"}}}
    assert provider_spec("stripe").payment_ref(payload) is None
