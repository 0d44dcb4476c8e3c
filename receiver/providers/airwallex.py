"""Airwallex: ``x-timestamp`` (Unix **milliseconds**) and ``x-signature``.

Documented scheme (airwallex.com/docs, "Listen for webhook events", verify signature):
``x-signature`` is hex HMAC-SHA256(webhook secret, ``x-timestamp`` string + raw body). The
original read the timestamp as seconds in one place and milliseconds in another
(docs/design-notes.md, defect 19); here it is milliseconds only, checked against the leeway (in
seconds).

Settings (``tenrusl/providers/airwallex.py``): ``TENRUSL_AIRWALLEX_WEBHOOK_SECRET`` (legacy
``AIRWALLEX_WEBHOOK_SECRET``), comma-separated for rotation; ``TENRUSL_AIRWALLEX_LEEWAY_SECONDS``.
"""

from __future__ import annotations

from receiver.providers.base import (
    Delivery,
    Provider,
    SignedRequest,
    Verification,
    strip_prefix,
    within_window,
)
from receiver.providers.samples import Context, Payload, dump, hex_id, iso
from tenrusl.providers.airwallex import SECRET
from tenrusl.security import hmac_matches, hmac_sha256_hex
from tenrusl.settings import Settings


class AirwallexProvider(Provider):
    name = "airwallex"
    currency = "USD"
    signature_headers = ("x-timestamp", "x-signature")

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = SECRET.read(settings)

    async def verify(self, request: SignedRequest) -> Verification:
        if not self.secrets:
            return Verification.reject("missing_secret")
        timestamp, signature = request.header("x-timestamp"), strip_prefix(request.header("x-signature"))
        if not timestamp or not signature:
            return Verification.reject("missing_signature_headers")
        if not timestamp.isdigit():
            return Verification.reject("invalid_timestamp_format")
        if not within_window(int(timestamp) / 1000.0, request.now, self.leeway_s):
            return Verification.reject("timestamp_out_of_tolerance")
        signed = timestamp.encode() + request.body
        if hmac_matches(self.secrets, signed, [signature]):
            return Verification.accept()
        return Verification.reject("invalid_signature")

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"secret": SECRET.newest(settings)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        timestamp = str(int(now * 1000))
        headers = {
            "Content-Type": "application/json",
            "x-timestamp": timestamp,
            "x-signature": hmac_sha256_hex(credentials["secret"], timestamp.encode() + body),
        }
        return Delivery(body, headers)

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
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


PROVIDER = AirwallexProvider
