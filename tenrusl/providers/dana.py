"""DANA (SNAP BI) notifications.

Event id: ``originalReferenceNo`` + ``latestTransactionStatus``, else the ``X-EXTERNAL-ID`` header
(DANA's own, unique per day). Status: ``latestTransactionStatus`` 00 succeeded, 05 cancelled and 06
failed (both failed), the rest in flight. Our payment is ``originalPartnerReferenceNo``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenrusl.constants import PAYMENT_FAILED, PAYMENT_PENDING, PAYMENT_SUCCEEDED
from tenrusl.providers.base import EventId, ProviderSpec
from tenrusl.providers.config import Choice, Parsed, Text
from tenrusl.providers.fields import Headers, first_string, header
from tenrusl.providers.keys import PublicKeyTypes, load_public_keys

PUBLIC_KEY: Parsed[tuple[PublicKeyTypes, ...]] = Parsed(
    ("TENRUSL_DANA_PUBLIC_KEY", "DANA_PUBLIC_KEY"), load_public_keys, default=()
)
# `raw`: the original's RSA over the raw body, for senders built against it (docs/providers.md).
SIGNATURE_MODE = Choice(("TENRUSL_DANA_SIGNATURE_MODE",), ("snap", "raw"), "snap")
# The path DANA signs, when a proxy rewrites ours (default: the request path).
REQUEST_PATH = Text(("TENRUSL_DANA_REQUEST_PATH",))
SIM_PRIVATE_KEY = Text(("TENRUSL_DANA_SIM_PRIVATE_KEY",), secret=True, sign_only=True)
PARTNER_ID = Text(("TENRUSL_DANA_PARTNER_ID",), default="DANA", sign_only=True)

# SNAP latestTransactionStatus codes: 00 success, 05 cancelled, 06 failed; others in flight.
SNAP_STATUS = {"00": PAYMENT_SUCCEEDED, "05": PAYMENT_FAILED, "06": PAYMENT_FAILED}


class Dana(ProviderSpec):
    name = "dana"
    payment_ref_fields = (
        "originalPartnerReferenceNo",
        "partnerReferenceNo",
        *ProviderSpec.payment_ref_fields,
    )
    variables = (PUBLIC_KEY, SIGNATURE_MODE, REQUEST_PATH, SIM_PRIVATE_KEY, PARTNER_ID)

    def event_id(self, payload: Mapping[str, Any], headers: Headers) -> EventId | None:
        found = first_string(payload, self.event_id_fields)
        if found:
            return EventId(found, "payload")
        reference = first_string(payload, ("originalReferenceNo",))
        status = first_string(payload, ("latestTransactionStatus",))
        if reference and status:
            return EventId(f"{reference}:{status}", "payload")
        external = header(headers, "X-EXTERNAL-ID")
        if external:
            return EventId(external, "header:x-external-id")
        return super().event_id(payload, headers)

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        code = payload.get("latestTransactionStatus")
        if isinstance(code, str):
            return SNAP_STATUS.get(code, PAYMENT_PENDING)
        return super().payment_status(payload)


SPEC = Dana()
