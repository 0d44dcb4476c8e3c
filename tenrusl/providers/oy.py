"""OY! Indonesia callbacks: disbursements carry ``trx_id``, ``partner_trx_id`` (ours) and
``status.code`` ("000" success, "300" failed); other callbacks a ``status`` word.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenrusl.constants import PAYMENT_FAILED, PAYMENT_PENDING, PAYMENT_SUCCEEDED
from tenrusl.providers.base import EventId, ProviderSpec
from tenrusl.providers.config import Values
from tenrusl.providers.fields import Headers, dig, first_string
from tenrusl.providers.payment_status import classify

SECRET = Values(("TENRUSL_OY_CALLBACK_SECRET", "OY_CALLBACK_SECRET"))
# Source IPs allowed to call back, checked first when set (behind a proxy: TENRUSL_TRUSTED_PROXIES).
IP_WHITELIST = Values(("TENRUSL_OY_IP_WHITELIST", "OY_IP_WHITELIST"), secret=False)

STATUS_CODES = {"000": PAYMENT_SUCCEEDED, "300": PAYMENT_FAILED}
EXTRA_WORDS = {"complete": PAYMENT_SUCCEEDED, "closed": PAYMENT_FAILED}


class Oy(ProviderSpec):
    name = "oy"
    payment_ref_fields = (
        "partner_trx_id",
        "partner_tx_id",
        "partner_tx_ref",
        *ProviderSpec.payment_ref_fields,
    )
    variables = (SECRET, IP_WHITELIST)

    def event_id(self, payload: Mapping[str, Any], headers: Headers) -> EventId | None:
        found = first_string(payload, self.event_id_fields)
        if found:
            return EventId(found, "payload")
        trx = first_string(payload, ("trx_id", "tx_ref_number", "partner_trx_id", "partner_tx_id"))
        status = dig(payload, "status.code") or dig(payload, "status")
        if trx and isinstance(status, str) and status:
            return EventId(f"{trx}:{status}", "payload")
        return super().event_id(payload, headers)

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        code = dig(payload, "status.code")
        if isinstance(code, str):
            return STATUS_CODES.get(code, PAYMENT_PENDING)
        status = payload.get("status")
        if isinstance(status, str):
            return EXTRA_WORDS.get(status.lower()) or classify(status) or PAYMENT_PENDING
        return super().payment_status(payload)


SPEC = Oy()
