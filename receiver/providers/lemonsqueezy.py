"""Lemon Squeezy: ``X-Signature: hex(HMAC-SHA256(signing secret, raw body))``.

Documented scheme (docs.lemonsqueezy.com/help/webhooks, "Signing requests"); the event name is
in ``meta.event_name`` (and the ``X-Event-Name`` header). No delivery id is documented, so the
event id is derived from the event name, the resource and its ``updated_at`` (a redelivery
repeats them; a later change does not), else the body hash.

Settings: ``TENRUSL_LS_WEBHOOK_SECRET`` (legacy ``LS_WEBHOOK_SECRET``; the original's production
template spelled it ``TENRUSL_LEMONSQUEEZY_WEBHOOK_SECRET``, also read), comma-separated for
rotation. Our payment is named by ``meta.custom_data.provider_ref`` (checkout custom data), else
the order ``identifier``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from receiver.payload import dig, first_string
from receiver.providers.base import (
    Delivery,
    EventId,
    Provider,
    SignedRequest,
    Verification,
    first_secret,
    hmac_sha256_hex,
    verify_body_hmac,
)
from receiver.providers.formats import json_field
from receiver.status import infer_status
from tenrusl.settings import Settings

SECRET_ENV = ("TENRUSL_LS_WEBHOOK_SECRET", "LS_WEBHOOK_SECRET", "TENRUSL_LEMONSQUEEZY_WEBHOOK_SECRET")


class LemonSqueezyProvider(Provider):
    name = "lemonsqueezy"
    signature_headers = ("X-Signature",)
    event_type_fields = ("meta.event_name",)
    payment_ref_fields = (
        "meta.custom_data.provider_ref",
        "meta.custom_data.order_id",
        "data.attributes.identifier",
        "data.id",
    )

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = settings.secrets(*SECRET_ENV)

    async def verify(self, request: SignedRequest) -> Verification:
        return verify_body_hmac(self.secrets, request, "X-Signature")

    def event_id(self, payload: Mapping[str, Any], request: SignedRequest) -> EventId | None:
        name = dig(payload, "meta.event_name")
        kind, ident = dig(payload, "data.type"), dig(payload, "data.id")
        updated = dig(payload, "data.attributes.updated_at")
        parts = (name, kind, ident, updated)
        if all(isinstance(p, str | int) and str(p) for p in parts):
            return EventId(f"{name}:{kind}/{ident}:{updated}", "payload")
        return None  # the gate falls back to the body hash

    def event_type(self, payload: Mapping[str, Any], request: SignedRequest) -> str | None:
        return first_string(payload, self.event_type_fields) or request.header("X-Event-Name") or None

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        return infer_status(payload, ("data.attributes.status",))

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"secret": first_secret(settings, SECRET_ENV)}

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


PROVIDER = LemonSqueezyProvider
