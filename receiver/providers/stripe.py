"""Stripe: ``Stripe-Signature: t=<unix s>,v1=<hex>[,v1=<hex>...]``.

Documented scheme (stripe.com/docs/webhooks, "Verify signatures manually"): v1 is hex
HMAC-SHA256(endpoint secret, ``"<t>.<raw body>"``); several v1 values appear while a secret
rolls; reject when ``t`` is outside the tolerance (300 s by default).

Settings (``tenrusl/providers/stripe.py``): ``TENRUSL_STRIPE_WEBHOOK_SECRET`` (legacy
``STRIPE_WEBHOOK_SECRET``), comma-separated for rotation; ``TENRUSL_STRIPE_LEEWAY_SECONDS``
(default ``TENRUSL_SIG_TS_LEEWAY_SECONDS``).
"""

from __future__ import annotations

from receiver.providers.base import Delivery, Provider, SignedRequest, Verification, within_window
from receiver.providers.samples import Context, Payload, dump, hex_id, uuid_str
from tenrusl.providers.stripe import SECRET
from tenrusl.security import hmac_sha256_hex, matches_any
from tenrusl.settings import Settings


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
    currency = "USD"
    signature_headers = ("Stripe-Signature",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = SECRET.read(settings)

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

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"secret": SECRET.newest(settings)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        timestamp = str(int(now))
        signature = hmac_sha256_hex(credentials["secret"], timestamp.encode() + b"." + body)
        return Delivery(
            body, {"Content-Type": "application/json", "Stripe-Signature": f"t={timestamp},v1={signature}"}
        )

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
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


PROVIDER = StripeProvider
