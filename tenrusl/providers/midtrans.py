"""Midtrans HTTP notifications: once per state change of a transaction, possibly repeated.

The event id is ``transaction_id:transaction_status[:fraud_status]``: a repeat deduplicates, a new
state does not. Status: capture (fraud accept) or settlement succeed; deny, cancel, expire and
failure fail; the rest are pending. Our payment is ``order_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenrusl.constants import PAYMENT_FAILED, PAYMENT_PENDING, PAYMENT_SUCCEEDED
from tenrusl.providers.base import EventId, ProviderSpec
from tenrusl.providers.config import Values
from tenrusl.providers.fields import Headers, first_string

SERVER_KEY = Values(("TENRUSL_MIDTRANS_SERVER_KEY", "MIDTRANS_SERVER_KEY"), dev_default="changeme")
STATE_FIELDS = ("transaction_status", "fraud_status")
FAILED = frozenset({"deny", "cancel", "expire", "failure"})


class Midtrans(ProviderSpec):
    name = "midtrans"
    event_type_fields = ("transaction_status", "status")
    payment_ref_fields = ("order_id",)
    variables = (SERVER_KEY,)

    def event_id(self, payload: Mapping[str, Any], headers: Headers) -> EventId | None:
        transaction = first_string(payload, ("transaction_id", "order_id"))
        if not transaction:
            return super().event_id(payload, headers)
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


SPEC = Midtrans()
