"""Stripe: ``Stripe-Signature: t=<unix s>,v1=<hex>[,v1=<hex>...]``.

Documented scheme (stripe.com/docs/webhooks, "Verify signatures manually"): v1 is hex
HMAC-SHA256(endpoint secret, ``"<t>.<raw body>"``); several v1 values appear while a secret
rolls; reject when ``t`` is outside the tolerance (300 s by default).

Settings: ``TENRUSL_STRIPE_WEBHOOK_SECRET`` (legacy ``STRIPE_WEBHOOK_SECRET``), comma-separated
for rotation; ``TENRUSL_STRIPE_LEEWAY_SECONDS`` (default ``TENRUSL_SIG_TS_LEEWAY_SECONDS``).
The payment is in ``data.object``: its ``metadata.provider_ref``, ``client_reference_id`` or
``metadata.order_id`` name our payment; the object's own id is the last fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from receiver.providers.base import (
    Delivery,
    Provider,
    SignedRequest,
    Verification,
    first_secret,
    hmac_sha256_hex,
    matches_any,
    within_window,
)
from receiver.status import infer_status
from tenrusl.constants import PAYMENT_FAILED, PAYMENT_SUCCEEDED
from tenrusl.settings import Settings

SECRET_ENV = ("TENRUSL_STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET")

# Event types that settle a payment whatever the object's status field says.
TYPE_STATUS = {
    "payment_intent.succeeded": PAYMENT_SUCCEEDED,
    "charge.succeeded": PAYMENT_SUCCEEDED,
    "checkout.session.async_payment_succeeded": PAYMENT_SUCCEEDED,
    "invoice.paid": PAYMENT_SUCCEEDED,
    "invoice.payment_succeeded": PAYMENT_SUCCEEDED,
    "payment_intent.payment_failed": PAYMENT_FAILED,
    "payment_intent.canceled": PAYMENT_FAILED,
    "charge.failed": PAYMENT_FAILED,
    "checkout.session.async_payment_failed": PAYMENT_FAILED,
    "checkout.session.expired": PAYMENT_FAILED,
}


def parse_header(header: str) -> tuple[str, list[str]]:
    """``(t, [v1, ...])`` from the header; other schemes (v0) are ignored."""
    timestamp, signatures = "", []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamp = value.strip()
        elif key == "v1" and value.strip():
            signatures.append(value.strip())
    return timestamp, signatures


class StripeProvider(Provider):
    name = "stripe"
    signature_headers = ("Stripe-Signature",)
    event_id_fields = ("id",)
    event_type_fields = ("type",)
    payment_ref_fields = (
        "data.object.metadata.provider_ref",
        "data.object.client_reference_id",
        "data.object.metadata.order_id",
        "data.object.payment_intent",
        "data.object.id",
    )

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = settings.secrets(*SECRET_ENV)

    async def verify(self, request: SignedRequest) -> Verification:
        if not self.secrets:
            return Verification.reject("missing_secret")
        header = request.header("Stripe-Signature")
        if not header:
            return Verification.reject("missing_signature_header")
        timestamp, signatures = parse_header(header)
        if not timestamp.isdigit() or not signatures:
            return Verification.reject("malformed_signature_header")
        if not within_window(int(timestamp), request.now, self.leeway_s):
            return Verification.reject("timestamp_out_of_tolerance")
        signed = timestamp.encode() + b"." + request.body
        expected = [hmac_sha256_hex(secret, signed) for secret in self.secrets]
        if matches_any(expected, signatures):
            return Verification.accept()
        return Verification.reject("invalid_signature")

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        by_type = TYPE_STATUS.get(str(payload.get("type", "")))
        if by_type:
            return by_type
        return infer_status(payload, ("data.object.payment_status", "data.object.status", "status"))

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"secret": first_secret(settings, SECRET_ENV)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        timestamp = str(int(now))
        signature = hmac_sha256_hex(credentials["secret"], timestamp.encode() + b"." + body)
        return Delivery(
            body, {"Content-Type": "application/json", "Stripe-Signature": f"t={timestamp},v1={signature}"}
        )


PROVIDER = StripeProvider
