"""Lemon Squeezy events: the name is ``meta.event_name`` (also the ``X-Event-Name`` header).

No delivery id is documented, so the event id is derived from the event name, the resource and
its ``updated_at`` (a redelivery repeats them; a later change does not), else the body hash. Our
payment is ``meta.custom_data.provider_ref`` (checkout custom data), else the order ``identifier``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenrusl.providers.base import EventId, ProviderSpec
from tenrusl.providers.config import Values
from tenrusl.providers.fields import Headers, dig, first_string, header

# The original's production template spelled it TENRUSL_LEMONSQUEEZY_WEBHOOK_SECRET: also read.
SECRET = Values(("TENRUSL_LS_WEBHOOK_SECRET", "LS_WEBHOOK_SECRET", "TENRUSL_LEMONSQUEEZY_WEBHOOK_SECRET"))


class LemonSqueezy(ProviderSpec):
    name = "lemonsqueezy"
    event_type_fields = ("meta.event_name",)
    payment_ref_fields = (
        "meta.custom_data.provider_ref",
        "meta.custom_data.order_id",
        "data.attributes.identifier",
        "data.id",
    )
    status_fields = ("data.attributes.status",)
    variables = (SECRET,)

    def event_id(self, payload: Mapping[str, Any], headers: Headers) -> EventId | None:
        name = dig(payload, "meta.event_name")
        kind, ident = dig(payload, "data.type"), dig(payload, "data.id")
        updated = dig(payload, "data.attributes.updated_at")
        parts = (name, kind, ident, updated)
        if all(isinstance(p, str | int) and str(p) for p in parts):
            return EventId(f"{name}:{kind}/{ident}:{updated}", "payload")
        return None  # the gate falls back to the body hash

    def event_type(self, payload: Mapping[str, Any], headers: Headers) -> str | None:
        return first_string(payload, self.event_type_fields) or header(headers, "X-Event-Name") or None


SPEC = LemonSqueezy()
