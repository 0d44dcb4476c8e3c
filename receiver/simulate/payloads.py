"""Realistic webhook bodies, one builder per provider, shaped like each provider's documented
notification for a successful payment.

Each builder puts *our* payment reference where that provider module looks for it, so with
``--with-payments`` the event settles a real payment. Every random part comes from the
``random.Random`` passed in: the same seed gives the same events (and so, against the same
database, duplicates). JSON is compact and ASCII so that a re-serialisation of the decoded body
(what PayPal's verify API receives) gives the same bytes.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from tenrusl.constants import PROVIDERS


@dataclass(frozen=True)
class Context:
    rng: random.Random
    ref: str  # our payment's provider_ref
    amount: int  # minor units
    currency: str
    now: float


@dataclass(frozen=True)
class Payload:
    body: bytes
    event_type: str | None
    # A field whose value the signature covers; a tamper test flips a byte there, because for
    # schemes that sign only some fields (Midtrans, Skrill) a byte elsewhere is not protected.
    signed_field: str | None = None


Builder = Callable[[Context], Payload]


def dump(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def hex_id(rng: random.Random, length: int = 24) -> str:
    return f"{rng.getrandbits(length * 4):0{length}x}"


def digits(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(length))


def uuid_str(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def iso(now: float, millis: bool = False) -> str:
    moment = datetime.fromtimestamp(now, UTC)
    text = moment.isoformat(timespec="milliseconds" if millis else "seconds")
    return text.replace("+00:00", "Z")


def major(ctx: Context) -> str:
    """The amount in major units with two decimals, as most providers print it."""
    return f"{ctx.amount / 100:.2f}"


def mock(ctx: Context) -> Payload:
    doc = {
        "id": f"evt_{hex_id(ctx.rng)}",
        "type": "payment.succeeded",
        "status": "succeeded",
        "provider_ref": ctx.ref,
        "amount": ctx.amount,
        "currency": ctx.currency,
        "created_at": iso(ctx.now),
    }
    return Payload(dump(doc), "payment.succeeded")


def stripe(ctx: Context) -> Payload:
    intent = f"pi_{hex_id(ctx.rng)}"
    doc = {
        "id": f"evt_{hex_id(ctx.rng)}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(ctx.now),
        "type": "payment_intent.succeeded",
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": f"req_{hex_id(ctx.rng, 14)}", "idempotency_key": uuid_str(ctx.rng)},
        "data": {
            "object": {
                "id": intent,
                "object": "payment_intent",
                "amount": ctx.amount,
                "amount_received": ctx.amount,
                "currency": ctx.currency.lower(),
                "status": "succeeded",
                "latest_charge": f"ch_{hex_id(ctx.rng)}",
                "metadata": {"provider_ref": ctx.ref},
            }
        },
    }
    return Payload(dump(doc), "payment_intent.succeeded")


def paypal(ctx: Context) -> Payload:
    capture = hex_id(ctx.rng, 17).upper()
    value = major(ctx)
    doc = {
        "id": f"WH-{hex_id(ctx.rng, 17).upper()}-{hex_id(ctx.rng, 17).upper()}",
        "event_version": "1.0",
        "create_time": iso(ctx.now),
        "resource_type": "capture",
        "resource_version": "2.0",
        "event_type": "PAYMENT.CAPTURE.COMPLETED",
        "summary": f"Payment completed for {value} {ctx.currency}",
        "resource": {
            "id": capture,
            "status": "COMPLETED",
            "amount": {"currency_code": ctx.currency, "value": value},
            "final_capture": True,
            "custom_id": ctx.ref,
            "invoice_id": ctx.ref,
            "seller_protection": {"status": "ELIGIBLE"},
            "create_time": iso(ctx.now),
            "update_time": iso(ctx.now),
        },
        "links": [
            {
                "href": f"https://api.sandbox.paypal.com/v2/payments/captures/{capture}",
                "rel": "self",
                "method": "GET",
            }
        ],
    }
    return Payload(dump(doc), "PAYMENT.CAPTURE.COMPLETED")


def paddle(ctx: Context) -> Payload:
    doc = {
        "event_id": f"evt_{hex_id(ctx.rng, 26)}",
        "event_type": "transaction.completed",
        "occurred_at": iso(ctx.now, millis=True),
        "notification_id": f"ntf_{hex_id(ctx.rng, 26)}",
        "data": {
            "id": f"txn_{hex_id(ctx.rng, 26)}",
            "status": "completed",
            "currency_code": ctx.currency,
            "origin": "web",
            "custom_data": {"provider_ref": ctx.ref},
            "details": {"totals": {"total": str(ctx.amount), "currency_code": ctx.currency}},
            "billed_at": iso(ctx.now),
        },
    }
    return Payload(dump(doc), "transaction.completed")


def lemonsqueezy(ctx: Context) -> Payload:
    doc = {
        "meta": {"event_name": "order_created", "custom_data": {"provider_ref": ctx.ref}},
        "data": {
            "type": "orders",
            "id": digits(ctx.rng, 7),
            "attributes": {
                "store_id": 12345,
                "identifier": uuid_str(ctx.rng),
                "order_number": int(digits(ctx.rng, 6)),
                "status": "paid",
                "currency": ctx.currency,
                "total": ctx.amount,
                "total_formatted": f"{major(ctx)} {ctx.currency}",
                "created_at": iso(ctx.now, millis=True),
                "updated_at": iso(ctx.now, millis=True),
            },
        },
    }
    return Payload(dump(doc), "order_created")


def airwallex(ctx: Context) -> Payload:
    doc = {
        "id": f"evt_{hex_id(ctx.rng)}",
        "name": "payment_intent.succeeded",
        "account_id": f"acct_{hex_id(ctx.rng, 16)}",
        "created_at": iso(ctx.now, millis=True),
        "version": "2024-06-30",
        "data": {
            "object": {
                "id": f"int_{hex_id(ctx.rng)}",
                "amount": ctx.amount / 100,
                "currency": ctx.currency,
                "merchant_order_id": ctx.ref,
                "status": "SUCCEEDED",
                "captured_amount": ctx.amount / 100,
            }
        },
    }
    return Payload(dump(doc), "payment_intent.succeeded")


def xendit(ctx: Context) -> Payload:
    doc = {
        "id": hex_id(ctx.rng),
        "external_id": ctx.ref,
        "user_id": hex_id(ctx.rng),
        "is_high": False,
        "payment_method": "BANK_TRANSFER",
        "status": "PAID",
        "merchant_name": "TenRusl Demo",
        "amount": ctx.amount,
        "paid_amount": ctx.amount,
        "bank_code": "BCA",
        "paid_at": iso(ctx.now, millis=True),
        "payer_email": "buyer@example.com",
        "description": "Invoice",
        "currency": ctx.currency,
        "payment_channel": "BCA",
        "payment_destination": digits(ctx.rng, 10),
        "created": iso(ctx.now, millis=True),
        "updated": iso(ctx.now, millis=True),
    }
    return Payload(dump(doc), None)


def midtrans(ctx: Context) -> Payload:
    doc = {
        "transaction_time": datetime.fromtimestamp(ctx.now, UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "transaction_status": "settlement",
        "transaction_id": uuid_str(ctx.rng),
        "status_message": "midtrans payment notification",
        "status_code": "200",
        "settlement_time": datetime.fromtimestamp(ctx.now, UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "payment_type": "bank_transfer",
        "order_id": ctx.ref,
        "merchant_id": "G" + digits(ctx.rng, 9),
        "gross_amount": f"{ctx.amount}.00",
        "fraud_status": "accept",
        "currency": ctx.currency,
        "va_numbers": [{"bank": "bca", "va_number": digits(ctx.rng, 11)}],
    }
    return Payload(dump(doc), "settlement", signed_field="gross_amount")


def tripay(ctx: Context) -> Payload:
    fee = max(1, ctx.amount // 100)
    doc = {
        "reference": "T" + digits(ctx.rng, 4) + hex_id(ctx.rng, 10).upper(),
        "merchant_ref": ctx.ref,
        "payment_method": "BRI Virtual Account",
        "payment_method_code": "BRIVA",
        "total_amount": ctx.amount,
        "fee_merchant": fee,
        "fee_customer": 0,
        "total_fee": fee,
        "amount_received": ctx.amount - fee,
        "is_closed_payment": 1,
        "status": "PAID",
        "paid_at": int(ctx.now),
        "note": None,
    }
    return Payload(dump(doc), "payment_status")


def doku(ctx: Context) -> Payload:
    doc = {
        "service": {"id": "VIRTUAL_ACCOUNT"},
        "acquirer": {"id": "BCA"},
        "channel": {"id": "VIRTUAL_ACCOUNT_BCA"},
        "order": {"invoice_number": ctx.ref, "amount": ctx.amount},
        "virtual_account_info": {"virtual_account_number": digits(ctx.rng, 16)},
        "virtual_account_payment": {
            "identifier": [{"name": "REQUEST_ID", "value": uuid_str(ctx.rng)}],
        },
        "transaction": {
            "status": "SUCCESS",
            "date": iso(ctx.now),
            "original_request_id": uuid_str(ctx.rng),
        },
    }
    return Payload(dump(doc), "VIRTUAL_ACCOUNT")


def dana(ctx: Context) -> Payload:
    doc = {
        "originalPartnerReferenceNo": ctx.ref,
        "originalReferenceNo": datetime.fromtimestamp(ctx.now, UTC).strftime("%Y%m%d") + digits(ctx.rng, 20),
        "merchantId": "2166" + digits(ctx.rng, 12),
        "amount": {"value": major(ctx), "currency": ctx.currency},
        "latestTransactionStatus": "00",
        "transactionStatusDesc": "SUCCESS",
        "createdTime": iso(ctx.now),
        "finishedTime": iso(ctx.now),
    }
    return Payload(dump(doc), None)


def oy(ctx: Context) -> Payload:
    doc = {
        "partner_trx_id": ctx.ref,
        "trx_id": uuid_str(ctx.rng),
        "amount": ctx.amount,
        "status": {"code": "000", "message": "Success"},
        "sender_bank": "014",
        "recipient_bank": "014",
        "recipient_account": digits(ctx.rng, 10),
        "timestamp": datetime.fromtimestamp(ctx.now, UTC).strftime("%d-%m-%Y %H:%M:%S"),
    }
    return Payload(dump(doc), None)


def payoneer(ctx: Context) -> Payload:
    doc = {
        "id": f"evt_{hex_id(ctx.rng)}",
        "event": "payment.completed",
        "paymentId": digits(ctx.rng, 9),
        "client_reference_id": ctx.ref,
        "status": "completed",
        "amount": major(ctx),
        "currency": ctx.currency,
        "created_at": iso(ctx.now),
    }
    return Payload(dump(doc), "payment.completed")


def skrill(ctx: Context) -> Payload:
    fields = [
        ("pay_to_email", "merchant@example.com"),
        ("pay_from_email", "buyer@example.com"),
        ("merchant_id", "12345678"),
        ("transaction_id", ctx.ref),
        ("mb_transaction_id", digits(ctx.rng, 10)),
        ("mb_amount", major(ctx)),
        ("mb_currency", ctx.currency),
        ("status", "2"),
        ("amount", major(ctx)),
        ("currency", ctx.currency),
        ("payment_type", "WLT"),
    ]
    return Payload(urlencode(fields).encode(), None, signed_field="mb_amount")


def amazon_bwp(ctx: Context) -> Payload:
    doc = {
        "version": "0",
        "id": uuid_str(ctx.rng),
        "detail-type": "ORDER_PAYMENT_CAPTURED",
        "source": "buywithprime",
        "time": iso(ctx.now),
        "type": "ORDER_PAYMENT_CAPTURED",
        "detail": {
            "orderId": ctx.ref,
            "externalId": ctx.ref,
            "status": "captured",
            "amount": {"value": ctx.amount, "currencyCode": ctx.currency},
        },
    }
    return Payload(dump(doc), "ORDER_PAYMENT_CAPTURED")


BUILDERS: dict[str, Builder] = {
    "mock": mock,
    "xendit": xendit,
    "midtrans": midtrans,
    "stripe": stripe,
    "paypal": paypal,
    "paddle": paddle,
    "lemonsqueezy": lemonsqueezy,
    "airwallex": airwallex,
    "tripay": tripay,
    "doku": doku,
    "dana": dana,
    "oy": oy,
    "payoneer": payoneer,
    "skrill": skrill,
    "amazon_bwp": amazon_bwp,
}
assert tuple(BUILDERS) == PROVIDERS, "one builder per provider, in catalogue order"

# Currencies the providers typically settle in (the Indonesian ones in rupiah).
CURRENCY = {
    "stripe": "USD",
    "paypal": "USD",
    "paddle": "USD",
    "lemonsqueezy": "USD",
    "airwallex": "USD",
    "payoneer": "USD",
    "skrill": "EUR",
    "amazon_bwp": "USD",
}


def build(provider: str, rng: random.Random, ref: str, now: float, amount: int | None = None) -> Payload:
    amount = amount if amount is not None else rng.randrange(10_000, 5_000_000, 100)
    ctx = Context(rng, ref, amount, CURRENCY.get(provider, "IDR"), now)
    return BUILDERS[provider](ctx)
