"""Skrill status posts (forms): 2 processed (succeeded), 0 pending, -1 cancelled, -2 failed,
-3 chargeback (failed). Event id ``mb_transaction_id:status``; our payment is ``transaction_id``
(the merchant's reference), else ``mb_transaction_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenrusl.constants import PAYMENT_FAILED, PAYMENT_PENDING, PAYMENT_SUCCEEDED
from tenrusl.providers.base import EventId, ProviderSpec
from tenrusl.providers.config import Choice, Values
from tenrusl.providers.fields import Headers, first_string

SECRET_WORD = Values(("TENRUSL_SKRILL_MD5_SECRET", "SKRILL_MD5_SECRET"))
# `legacy`: sign mb_transaction_id first, as the original did (docs/providers.md).
SIGNATURE_MODE = Choice(("TENRUSL_SKRILL_SIGNATURE_MODE",), ("standard", "legacy"), "standard")
# Checked against the posted merchant_id and pay_to_email when set.
MERCHANT_ID = Values(("TENRUSL_SKRILL_MERCHANT_ID", "SKRILL_MERCHANT_ID"), secret=False)
EMAIL = Values(("TENRUSL_SKRILL_EMAIL", "SKRILL_EMAIL"), secret=False)

STATUS = {
    "2": PAYMENT_SUCCEEDED,
    "0": PAYMENT_PENDING,
    "-1": PAYMENT_FAILED,
    "-2": PAYMENT_FAILED,
    "-3": PAYMENT_FAILED,  # chargeback
}


class Skrill(ProviderSpec):
    name = "skrill"
    event_type_fields = ("type", "event_type", "transaction_type")
    payment_ref_fields = ("transaction_id", "mb_transaction_id")
    variables = (SECRET_WORD, SIGNATURE_MODE, MERCHANT_ID, EMAIL)

    def event_id(self, payload: Mapping[str, Any], headers: Headers) -> EventId | None:
        txid = first_string(payload, ("mb_transaction_id", "transaction_id"))
        status = first_string(payload, ("status",))
        if txid and status:
            return EventId(f"{txid}:{status}", "payload")
        return super().event_id(payload, headers)

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        return STATUS.get(str(payload.get("status", "")).strip(), PAYMENT_PENDING)


SPEC = Skrill()
