"""Airwallex: ``x-timestamp`` (Unix **milliseconds**) and ``x-signature``.

Documented scheme (airwallex.com/docs, "Listen for webhook events", verify signature):
``x-signature`` is hex HMAC-SHA256(webhook secret, ``x-timestamp`` string + raw body). The
original read the timestamp as seconds in one place and milliseconds in another (defect 19);
here it is milliseconds only, checked against the leeway (in seconds).

Settings: ``TENRUSL_AIRWALLEX_WEBHOOK_SECRET`` (legacy ``AIRWALLEX_WEBHOOK_SECRET``),
comma-separated for rotation; ``TENRUSL_AIRWALLEX_LEEWAY_SECONDS``. Events carry ``id`` and
``name``; the payment is ``data.object`` (``merchant_order_id`` is ours).
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
    hmac_matches,
    hmac_sha256_hex,
    strip_prefix,
    within_window,
)
from receiver.status import infer_status
from tenrusl.constants import PAYMENT_FAILED, PAYMENT_SUCCEEDED
from tenrusl.settings import Settings

SECRET_ENV = ("TENRUSL_AIRWALLEX_WEBHOOK_SECRET", "AIRWALLEX_WEBHOOK_SECRET")

NAME_STATUS = {
    "payment_intent.succeeded": PAYMENT_SUCCEEDED,
    "payment_attempt.paid": PAYMENT_SUCCEEDED,
    "payment_intent.cancelled": PAYMENT_FAILED,
    "payment_attempt.failed_to_process": PAYMENT_FAILED,
}


class AirwallexProvider(Provider):
    name = "airwallex"
    signature_headers = ("x-timestamp", "x-signature")
    event_type_fields = ("name", "type", "event_type")
    payment_ref_fields = (
        "data.object.merchant_order_id",
        "data.object.metadata.provider_ref",
        "data.object.payment_intent_id",
        "data.object.id",
    )

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = settings.secrets(*SECRET_ENV)

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

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        by_name = NAME_STATUS.get(str(payload.get("name", "")))
        return by_name or infer_status(payload, ("data.object.status", "status"))

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"secret": first_secret(settings, SECRET_ENV)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        timestamp = str(int(now * 1000))
        headers = {
            "Content-Type": "application/json",
            "x-timestamp": timestamp,
            "x-signature": hmac_sha256_hex(credentials["secret"], timestamp.encode() + body),
        }
        return Delivery(body, headers)


PROVIDER = AirwallexProvider
