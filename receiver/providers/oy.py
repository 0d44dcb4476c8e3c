"""OY! Indonesia: the original's callback schemes, plus OY!'s documented IP allowlist.

OY! documents no body-HMAC header for its (non-SNAP) callbacks: it documents a source-IP
allowlist and an "Authorization Callback" gate, and recommends confirming the status through its
API. So this keeps the original's schemes, any one of which passes: ``Authorization: Bearer
<secret>``, ``X-Callback-Auth`` / ``X-OY-Callback-Auth`` equal to the secret, or
``X-OY-Signature: hex(HMAC-SHA256(secret, raw body))`` (only this one protects the body).

Settings: ``TENRUSL_OY_CALLBACK_SECRET`` (legacy ``OY_CALLBACK_SECRET``), comma-separated for
rotation; ``TENRUSL_OY_IP_WHITELIST`` (legacy ``OY_IP_WHITELIST``): comma-separated source IPs,
checked first when set (behind a proxy, set ``TENRUSL_TRUSTED_PROXIES``). Disbursement callbacks
carry ``trx_id``, ``partner_trx_id`` (ours) and ``status.code`` ("000" success, "300" failed).
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
    hmac_matches,
    hmac_sha256_hex,
    matches_any,
    strip_prefix,
)
from receiver.status import classify, infer_status
from tenrusl.constants import PAYMENT_FAILED, PAYMENT_PENDING, PAYMENT_SUCCEEDED
from tenrusl.settings import Settings

SECRET_ENV = ("TENRUSL_OY_CALLBACK_SECRET", "OY_CALLBACK_SECRET")
IP_ENV = ("TENRUSL_OY_IP_WHITELIST", "OY_IP_WHITELIST")
STATUS_CODES = {"000": PAYMENT_SUCCEEDED, "300": PAYMENT_FAILED}
EXTRA_WORDS = {"complete": PAYMENT_SUCCEEDED, "closed": PAYMENT_FAILED}


class OyProvider(Provider):
    name = "oy"
    signature_headers = ("X-OY-Signature",)
    payment_ref_fields = ("partner_trx_id", "partner_tx_id", "partner_tx_ref", *Provider.payment_ref_fields)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = settings.secrets(*SECRET_ENV)
        self.allowed_ips = settings.secrets(*IP_ENV)

    async def verify(self, request: SignedRequest) -> Verification:
        if self.allowed_ips and request.remote_ip not in self.allowed_ips:
            return Verification.reject("ip_not_allowed")
        if not self.secrets:
            return Verification.reject("missing_secret")
        auth = request.header("Authorization")
        static = request.header("X-Callback-Auth") or request.header("X-OY-Callback-Auth")
        signature = strip_prefix(request.header("X-OY-Signature"))
        if not (auth or static or signature):
            return Verification.reject("missing_signature")
        if auth[:7].lower() == "bearer " and matches_any(self.secrets, [auth[7:].strip()]):
            return Verification.accept("ok_bearer")
        if static and matches_any(self.secrets, [static]):
            return Verification.accept("ok_static_token")
        if signature and hmac_matches(self.secrets, request.body, [signature]):
            return Verification.accept("ok_hmac")
        return Verification.reject("invalid_signature")

    def event_id(self, payload: Mapping[str, Any], request: SignedRequest) -> EventId | None:
        found = first_string(payload, self.event_id_fields)
        if found:
            return EventId(found, "payload")
        trx = first_string(payload, ("trx_id", "tx_ref_number", "partner_trx_id", "partner_tx_id"))
        status = dig(payload, "status.code") or dig(payload, "status")
        if trx and isinstance(status, str) and status:
            return EventId(f"{trx}:{status}", "payload")
        return super().event_id(payload, request)

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        code = dig(payload, "status.code")
        if isinstance(code, str):
            return STATUS_CODES.get(code, PAYMENT_PENDING)
        status = payload.get("status")
        if isinstance(status, str):
            return EXTRA_WORDS.get(status.lower()) or classify(status) or PAYMENT_PENDING
        return infer_status(payload)

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"secret": first_secret(settings, SECRET_ENV)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        headers = {
            "Content-Type": "application/json",
            "X-OY-Signature": hmac_sha256_hex(credentials["secret"], body),
        }
        return Delivery(body, headers)


PROVIDER = OyProvider
