"""Lemon Squeezy: ``X-Signature: hex(HMAC-SHA256(signing secret, raw body))``.

Documented scheme (docs.lemonsqueezy.com/help/webhooks, "Signing requests").

Settings (``tenrusl/providers/lemonsqueezy.py``): ``TENRUSL_LS_WEBHOOK_SECRET`` (legacy
``LS_WEBHOOK_SECRET``; the original's production template spelled it
``TENRUSL_LEMONSQUEEZY_WEBHOOK_SECRET``, also read), comma-separated for rotation.
"""

from __future__ import annotations

from receiver.providers.base import Delivery, Provider, SignedRequest, Verification, verify_body_hmac
from receiver.providers.formats import json_field
from receiver.providers.samples import Context, Payload, digits, dump, iso, major, uuid_str
from tenrusl.providers.lemonsqueezy import SECRET
from tenrusl.security import hmac_sha256_hex
from tenrusl.settings import Settings


class LemonSqueezyProvider(Provider):
    name = "lemonsqueezy"
    currency = "USD"
    signature_headers = ("X-Signature",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = SECRET.read(settings)

    async def verify(self, request: SignedRequest) -> Verification:
        return verify_body_hmac(self.secrets, request, "X-Signature")

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"secret": SECRET.newest(settings)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        headers = {
            "Content-Type": "application/json",
            "X-Signature": hmac_sha256_hex(credentials["secret"], body),
        }
        event_name = json_field(body, "meta.event_name")
        if event_name:
            headers["X-Event-Name"] = event_name
        return Delivery(body, headers)

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
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


PROVIDER = LemonSqueezyProvider
