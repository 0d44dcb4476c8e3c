"""Midtrans: body field ``signature_key`` (HTTP notification).

Documented scheme (docs.midtrans.com, "HTTP(S) Notification / Webhooks", verifying
authenticity): hex SHA-512 of ``order_id + status_code + gross_amount + ServerKey``, with each
value exactly as sent (``gross_amount`` is a string such as "24145.00"). The original cast
numbers the PHP way (docs/design-notes.md, defect 19); here a JSON number keeps its source text.
Only those fields are signed, so the other fields are not integrity-protected (confirm with the
Status API).

Settings (``tenrusl/providers/midtrans.py``): ``TENRUSL_MIDTRANS_SERVER_KEY`` (legacy
``MIDTRANS_SERVER_KEY``; ``changeme`` outside production when unset), comma-separated for rotation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from receiver.providers.base import Delivery, Provider, SignedRequest, Verification
from receiver.providers.formats import json_as_sent
from receiver.providers.samples import Context, Payload, digits, dump, uuid_str
from tenrusl.providers.midtrans import SERVER_KEY
from tenrusl.security import matches_any
from tenrusl.settings import Settings

SIGNED_FIELDS = ("order_id", "status_code", "gross_amount")


def signature_key(fields: Mapping[str, Any], server_key: str) -> str:
    text = "".join(str(fields[name]) for name in SIGNED_FIELDS) + server_key
    return hashlib.sha512(text.encode()).hexdigest()


class MidtransProvider(Provider):
    name = "midtrans"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.keys = SERVER_KEY.read(settings)

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

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"server_key": SERVER_KEY.newest(settings)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        """Adds ``signature_key`` to the notification (the body must hold the signed fields)."""
        fields = json_as_sent(body)
        document = json.loads(body)
        document["signature_key"] = signature_key(fields, credentials["server_key"])
        signed = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        return Delivery(signed, {"Content-Type": "application/json"})

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
        doc = {
            "transaction_time": datetime.fromtimestamp(ctx.now, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "transaction_status": "settlement",
            "transaction_id": uuid_str(ctx.rng),
            "status_message": "midtrans payment notification",
            "status_code": "200",
            "settlement_time": datetime.fromtimestamp(ctx.now, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "payment_type": "bank_transfer",
            "order_id": ctx.ref,
            "merchant_id": "G" + digits(ctx.rng, 9),
            "gross_amount": f"{ctx.amount}.00",
            "fraud_status": "accept",
            "currency": ctx.currency,
            "va_numbers": [{"bank": "bca", "va_number": digits(ctx.rng, 11)}],
        }
        return Payload(dump(doc), "settlement", signed_field="gross_amount")


PROVIDER = MidtransProvider
