"""DOKU (non-SNAP) HTTP notifications.

Event id: ``order.invoice_number`` plus ``transaction.status`` (one notification per state of one
order), else DOKU's ``Request-Id`` header: that header is DOKU's own delivery id and is covered by
the signature (our correlation id is ``X-Request-ID``, never used as an event id).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenrusl.providers.base import EventId, ProviderSpec
from tenrusl.providers.config import Text, Values
from tenrusl.providers.fields import Headers, first_string, header

SECRET_KEY = Values(("TENRUSL_DOKU_SECRET_KEY", "DOKU_SECRET_KEY"))
CLIENT_ID = Values(("TENRUSL_DOKU_CLIENT_ID", "DOKU_CLIENT_ID"), secret=False)
# The notification path DOKU signs, when a proxy rewrites ours (default: the request path).
REQUEST_TARGET = Text(("TENRUSL_DOKU_REQUEST_TARGET", "DOKU_REQUEST_TARGET"))


class Doku(ProviderSpec):
    name = "doku"
    event_type_fields = ("type", "event", "service.id")
    payment_ref_fields = (
        "order.invoice_number",
        "invoice_number",
        "order_id",
        "transaction.original_request_id",
    )
    status_fields = ("transaction.status", "status", "data.status")
    variables = (SECRET_KEY, CLIENT_ID, REQUEST_TARGET)

    def event_id(self, payload: Mapping[str, Any], headers: Headers) -> EventId | None:
        found = first_string(payload, self.event_id_fields)
        if found:
            return EventId(found, "payload")
        invoice = first_string(payload, ("order.invoice_number",))
        status = first_string(payload, ("transaction.status",))
        if invoice and status:
            return EventId(f"{invoice}:{status.upper()}", "payload")
        request_id = header(headers, "Request-Id")
        return EventId(request_id, "header:request-id") if request_id else None


SPEC = Doku()
