"""Xendit callbacks: invoices carry ``external_id`` (ours) and ``status``; payment events carry
``event`` and ``data.{reference_id,status}``. Newer webhooks carry ``webhook-id``, Xendit's own
delivery id, stable across retries: the best dedup key when present.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenrusl.providers.base import EventId, ProviderSpec
from tenrusl.providers.config import Values
from tenrusl.providers.fields import Headers, header

TOKEN = Values(("TENRUSL_XENDIT_CALLBACK_TOKEN", "XENDIT_CALLBACK_TOKEN"), dev_default="changeme")


class Xendit(ProviderSpec):
    name = "xendit"
    event_type_fields = ("event", "type", "event_type")
    payment_ref_fields = ("external_id", "data.reference_id", "reference_id", "data.external_id", "data.id")
    status_fields = ("status", "data.status")
    variables = (TOKEN,)

    def event_id(self, payload: Mapping[str, Any], headers: Headers) -> EventId | None:
        webhook_id = header(headers, "webhook-id")
        if webhook_id:
            return EventId(webhook_id, "header:webhook-id")
        return super().event_id(payload, headers)


SPEC = Xendit()
