"""Xendit: ``x-callback-token`` equals the dashboard's callback verification token.

Documented scheme (docs.xendit.co, "Webhook" / "Callback verification token"): a static token,
not an HMAC, so the body is not integrity-protected; compare it in constant time. Newer
payment webhooks carry a ``webhook-id`` header that is stable across retries: it is Xendit's
own delivery id, so it is the best dedup key when present.

Settings: ``TENRUSL_XENDIT_CALLBACK_TOKEN`` (legacy ``XENDIT_CALLBACK_TOKEN``; ``changeme``
outside production when unset, as in the original), comma-separated for rotation. Invoice
callbacks carry ``external_id`` (ours) and ``status`` (PAID/SETTLED/EXPIRED); payment events
carry ``event`` and ``data.{reference_id,status}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from receiver.providers.base import Delivery, EventId, Provider, SignedRequest, Verification, matches_any
from receiver.status import infer_status
from tenrusl.settings import Settings

TOKEN_ENV = ("TENRUSL_XENDIT_CALLBACK_TOKEN", "XENDIT_CALLBACK_TOKEN")


def _tokens(settings: Settings) -> tuple[str, ...]:
    return settings.secrets(*TOKEN_ENV, default="" if settings.production else "changeme")


class XenditProvider(Provider):
    name = "xendit"
    signature_headers = ()  # the token is a secret: never fingerprinted
    event_type_fields = ("event", "type", "event_type")
    payment_ref_fields = ("external_id", "data.reference_id", "reference_id", "data.external_id", "data.id")

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.tokens = _tokens(settings)

    async def verify(self, request: SignedRequest) -> Verification:
        if not self.tokens:
            return Verification.reject("missing_expected_token")
        token = request.header("x-callback-token")
        if not token:
            return Verification.reject("missing_token_header")
        if matches_any(self.tokens, [token]):
            return Verification.accept()
        return Verification.reject("invalid_token")

    def event_id(self, payload: Mapping[str, Any], request: SignedRequest) -> EventId | None:
        webhook_id = request.header("webhook-id")
        if webhook_id:
            return EventId(webhook_id, "header:webhook-id")
        return super().event_id(payload, request)

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        return infer_status(payload, ("status", "data.status"))

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        tokens = _tokens(settings)
        return {"token": tokens[0] if tokens else ""}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        return Delivery(body, {"Content-Type": "application/json", "x-callback-token": credentials["token"]})


PROVIDER = XenditProvider
