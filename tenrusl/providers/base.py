"""What every process knows about a payment provider: how to read its notifications, its settings.

A provider module (``tenrusl/providers/<name>.py``) subclasses :class:`ProviderSpec` and answers
four questions about a verified delivery, from the parsed payload (and, for the id and type, the
delivery headers): which event is it (``event_id``, ``event_type``), and what does it say about
which payment (``payment_status``, ``payment_ref``). No secrets, no I/O: the receiver calls them
after verifying a delivery, the retry runner on the stored payload. Verifying and signing are the
receiver's (``receiver/providers/<name>.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from tenrusl.constants import MAX_PROVIDER_REF
from tenrusl.providers.config import Leeway, Setting
from tenrusl.providers.fields import Headers, first_string, header
from tenrusl.providers.payment_status import STATUS_FIELDS, infer_status
from tenrusl.storable import storable_text


@dataclass(frozen=True)
class EventId:
    value: str
    source: str  # "payload", "payload_nested", "header:<name>" or "generated_body_hash"

    @property
    def generated(self) -> bool:
        return self.source == "generated_body_hash"


def generated_event_id(body: bytes) -> EventId:
    """Deterministic id for id-less payloads, so a redelivery of the same bytes deduplicates."""
    return EventId("gen_" + hashlib.sha256(body).hexdigest()[:32], "generated_body_hash")


class ProviderSpec:
    """Generic extraction rules (docs/design-notes.md, "Reading a notification") that providers refine."""

    name: ClassVar[str]
    # Payload fields that hold the provider's event id, in order (strings only).
    event_id_fields: ClassVar[tuple[str, ...]] = ("id", "event_id")
    nested_event_id_fields: ClassVar[tuple[str, ...]] = (
        "data.id",
        "resource.id",
        "object.id",
        "data.object.id",
        "data.event_id",
    )
    event_type_fields: ClassVar[tuple[str, ...]] = ("type", "event_type", "event")
    # Payload fields that hold *our* payment reference. Never the event id: the original read the
    # top-level id first, so a Stripe `evt_...` never matched a payment (docs/design-notes.md, defect 7).
    payment_ref_fields: ClassVar[tuple[str, ...]] = (
        "provider_ref",
        "payment_provider_ref",
        "reference",
        "payment_id",
        "order_id",
        "external_id",
        "invoice_id",
        "reference_id",
        "merchant_reference",
        "data.provider_ref",
        "data.reference",
        "data.payment_id",
        "data.object.id",
        "data.id",
    )
    # Fields whose value is a status word (tenrusl/providers/payment_status.py), in order.
    status_fields: ClassVar[tuple[str, ...]] = STATUS_FIELDS
    # The provider's own environment variables (secrets, keys, modes), besides its clock leeway.
    variables: ClassVar[tuple[Setting, ...]] = ()

    @property
    def leeway(self) -> Leeway:
        """``TENRUSL_<PROVIDER>_LEEWAY_SECONDS``, else the global leeway."""
        return Leeway.of(self.name)

    def all_variables(self) -> tuple[Setting, ...]:
        return (self.leeway, *self.variables)

    def event_id(self, payload: Mapping[str, Any], headers: Headers) -> EventId | None:
        value = first_string(payload, self.event_id_fields)
        if value:
            return EventId(value, "payload")
        value = first_string(payload, self.nested_event_id_fields)
        if value:
            return EventId(value, "payload_nested")
        # A provider's own delivery-id header is a fine dedup key; our X-Request-ID never is: it
        # changes on every redelivery (docs/design-notes.md, defect 5).
        value = header(headers, "X-Event-Id")
        if value:
            return EventId(value, "header:x-event-id")
        return None

    def event_type(self, payload: Mapping[str, Any], headers: Headers) -> str | None:
        return first_string(payload, self.event_type_fields) or header(headers, "X-Event-Type") or None

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        return infer_status(payload, self.status_fields)

    def payment_ref(self, payload: Mapping[str, Any]) -> str | None:
        return first_string(payload, self.payment_ref_fields)

    def payment_fields(self, payload: Mapping[str, Any]) -> tuple[str, str | None]:
        """What the notification says about our payment: its status and its reference.

        What the receiver stores with the event and the retry runner applies. A reference longer
        than our column cannot name one of our payments: it reads as none (the event is stored and
        retried with "payment reference not found"). Text PostgreSQL cannot store is repaired (it
        matches no payment either).
        """
        ref = self.payment_ref(payload)
        if ref is not None:
            ref = None if len(ref) > MAX_PROVIDER_REF else storable_text(ref)
        return self.payment_status(payload), ref
