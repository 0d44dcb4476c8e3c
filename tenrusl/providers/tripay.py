"""Tripay callbacks: ``X-Callback-Event`` names the event (``payment_status``).

The payload has no event id; ``reference`` (Tripay's) plus ``status`` identify one transition, so
a redelivery deduplicates and PAID after UNPAID does not. Our payment is ``merchant_ref`` (what we
sent when creating the transaction), else Tripay's ``reference``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenrusl.providers.base import EventId, ProviderSpec
from tenrusl.providers.config import Values
from tenrusl.providers.fields import Headers, first_string, header

PRIVATE_KEY = Values(("TENRUSL_TRIPAY_PRIVATE_KEY", "TRIPAY_PRIVATE_KEY"))


class Tripay(ProviderSpec):
    name = "tripay"
    payment_ref_fields = ("merchant_ref", "reference")
    variables = (PRIVATE_KEY,)

    def event_id(self, payload: Mapping[str, Any], headers: Headers) -> EventId | None:
        found = first_string(payload, ("id", "event_id"))
        if found:
            return EventId(found, "payload")
        reference, status = first_string(payload, ("reference",)), first_string(payload, ("status",))
        if reference and status:
            return EventId(f"{reference}:{status.upper()}", "payload")
        return super().event_id(payload, headers)

    def event_type(self, payload: Mapping[str, Any], headers: Headers) -> str | None:
        return header(headers, "X-Callback-Event") or first_string(payload, self.event_type_fields)


SPEC = Tripay()
