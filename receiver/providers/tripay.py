"""Tripay: ``X-Callback-Signature: hex(HMAC-SHA256(private key, raw JSON body))``.

Documented scheme (tripay.co.id/developer, "Callback"): the header ``X-Callback-Event`` names
the event (``payment_status``). The payload has no event id; ``reference`` (Tripay's) plus the
``status`` identify one transition, so a redelivery deduplicates and PAID after UNPAID does not.

Settings: ``TENRUSL_TRIPAY_PRIVATE_KEY`` (legacy ``TRIPAY_PRIVATE_KEY``), comma-separated for
rotation. Our payment is ``merchant_ref`` (what we sent when creating the transaction), else
Tripay's ``reference``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from receiver.payload import first_string
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
from tenrusl.settings import Settings

SECRET_ENV = ("TENRUSL_TRIPAY_PRIVATE_KEY", "TRIPAY_PRIVATE_KEY")


class TripayProvider(Provider):
    name = "tripay"
    signature_headers = ("X-Callback-Signature",)
    payment_ref_fields = ("merchant_ref", "reference")

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = settings.secrets(*SECRET_ENV)

    async def verify(self, request: SignedRequest) -> Verification:
        return verify_body_hmac(
            self.secrets, request, "X-Callback-Signature", missing_secret="missing_private_key"
        )

    def event_id(self, payload: Mapping[str, Any], request: SignedRequest) -> EventId | None:
        found = first_string(payload, ("id", "event_id"))
        if found:
            return EventId(found, "payload")
        reference, status = first_string(payload, ("reference",)), first_string(payload, ("status",))
        if reference and status:
            return EventId(f"{reference}:{status.upper()}", "payload")
        return super().event_id(payload, request)

    def event_type(self, payload: Mapping[str, Any], request: SignedRequest) -> str | None:
        return request.header("X-Callback-Event") or first_string(payload, self.event_type_fields)

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"private_key": first_secret(settings, SECRET_ENV)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        headers = {
            "Content-Type": "application/json",
            "X-Callback-Event": "payment_status",
            "X-Callback-Signature": hmac_sha256_hex(credentials["private_key"], body),
        }
        return Delivery(body, headers)


PROVIDER = TripayProvider
