"""Midtrans: body field ``signature_key`` (HTTP notification).

Documented scheme (docs.midtrans.com, "HTTP(S) Notification / Webhooks", verifying
authenticity): hex SHA-512 of ``order_id + status_code + gross_amount + ServerKey``, with each
value exactly as sent (``gross_amount`` is a string such as "24145.00"). The original cast
numbers the PHP way (defect 19); here a JSON number keeps its source text. Only those fields
are signed, so the other fields are not integrity-protected (confirm with the Status API).

Midtrans notifies once per state change of one transaction (pending, then settlement) and may
repeat a notification, so the event id is ``transaction_id:transaction_status[:fraud_status]``:
a repeat deduplicates, a new state does not. Status: capture (fraud accept) or settlement
succeed; deny, cancel, expire and failure fail; the rest are pending.

Settings: ``TENRUSL_MIDTRANS_SERVER_KEY`` (legacy ``MIDTRANS_SERVER_KEY``; ``changeme`` outside
production when unset), comma-separated for rotation. Our payment is ``order_id``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from receiver.payload import first_string
from receiver.providers.base import Delivery, EventId, Provider, SignedRequest, Verification, matches_any
from receiver.providers.formats import json_as_sent
from tenrusl.constants import PAYMENT_FAILED, PAYMENT_PENDING, PAYMENT_SUCCEEDED
from tenrusl.settings import Settings

KEY_ENV = ("TENRUSL_MIDTRANS_SERVER_KEY", "MIDTRANS_SERVER_KEY")
SIGNED_FIELDS = ("order_id", "status_code", "gross_amount")
STATE_FIELDS = ("transaction_status", "fraud_status")
FAILED = frozenset({"deny", "cancel", "expire", "failure"})


def _keys(settings: Settings) -> tuple[str, ...]:
    return settings.secrets(*KEY_ENV, default="" if settings.production else "changeme")


def signature_key(fields: Mapping[str, Any], server_key: str) -> str:
    text = "".join(str(fields[name]) for name in SIGNED_FIELDS) + server_key
    return hashlib.sha512(text.encode()).hexdigest()


class MidtransProvider(Provider):
    name = "midtrans"
    event_type_fields = ("transaction_status", "status")
    payment_ref_fields = ("order_id",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.keys = _keys(settings)

    async def verify(self, request: SignedRequest) -> Verification:
        if not self.keys:
            return Verification.reject("missing_server_key")
        try:
            fields = json_as_sent(request.body)
        except ValueError:
            return Verification.reject("invalid_json")
        if not isinstance(fields, dict):
            return Verification.reject("invalid_json")
        provided = fields.get("signature_key")
        if not isinstance(provided, str) or not provided.strip():
            return Verification.reject("missing_signature")
        if any(not isinstance(fields.get(n), str) or not fields[n] for n in SIGNED_FIELDS):
            return Verification.reject("missing_fields")
        expected = [signature_key(fields, key) for key in self.keys]
        if matches_any(expected, [provided.strip()], fold_case=True):
            return Verification.accept()
        return Verification.reject("invalid_signature")

    def event_id(self, payload: Mapping[str, Any], request: SignedRequest) -> EventId | None:
        transaction = first_string(payload, ("transaction_id", "order_id"))
        if not transaction:
            return super().event_id(payload, request)
        parts = [transaction, *filter(None, (first_string(payload, (f,)) for f in STATE_FIELDS))]
        return EventId(":".join(parts), "payload")

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        status = str(payload.get("transaction_status", "")).lower()
        fraud = str(payload.get("fraud_status", "accept")).lower()
        if status == "settlement" or (status == "capture" and fraud == "accept"):
            return PAYMENT_SUCCEEDED
        if status in FAILED or (status == "capture" and fraud == "deny"):
            return PAYMENT_FAILED
        return PAYMENT_PENDING

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        keys = _keys(settings)
        return {"server_key": keys[0] if keys else ""}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        """Adds ``signature_key`` to the notification (the body must hold the signed fields)."""
        fields = json_as_sent(body)
        document = json.loads(body)
        document["signature_key"] = signature_key(fields, credentials["server_key"])
        signed = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        return Delivery(signed, {"Content-Type": "application/json"})


PROVIDER = MidtransProvider
