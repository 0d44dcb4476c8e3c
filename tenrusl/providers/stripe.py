"""Stripe events: the payment is ``data.object``; the event type settles it when it can.

Our payment is named by the object's ``metadata.provider_ref``, ``client_reference_id`` or
``metadata.order_id``; the object's own id is the last fallback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenrusl.constants import PAYMENT_FAILED, PAYMENT_SUCCEEDED
from tenrusl.providers.base import ProviderSpec
from tenrusl.providers.config import Values
from tenrusl.providers.payment_status import infer_status

SECRET = Values(("TENRUSL_STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET"))

# Event types that settle a payment whatever the object's status field says.
TYPE_STATUS = {
    "payment_intent.succeeded": PAYMENT_SUCCEEDED,
    "charge.succeeded": PAYMENT_SUCCEEDED,
    "checkout.session.async_payment_succeeded": PAYMENT_SUCCEEDED,
    "invoice.paid": PAYMENT_SUCCEEDED,
    "invoice.payment_succeeded": PAYMENT_SUCCEEDED,
    "payment_intent.payment_failed": PAYMENT_FAILED,
    "payment_intent.canceled": PAYMENT_FAILED,
    "charge.failed": PAYMENT_FAILED,
    "checkout.session.async_payment_failed": PAYMENT_FAILED,
    "checkout.session.expired": PAYMENT_FAILED,
}


class Stripe(ProviderSpec):
    name = "stripe"
    event_id_fields = ("id",)
    event_type_fields = ("type",)
    payment_ref_fields = (
        "data.object.metadata.provider_ref",
        "data.object.client_reference_id",
        "data.object.metadata.order_id",
        "data.object.payment_intent",
        "data.object.id",
    )
    status_fields = ("data.object.payment_status", "data.object.status", "status")
    variables = (SECRET,)

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        return TYPE_STATUS.get(str(payload.get("type", ""))) or infer_status(payload, self.status_fields)


SPEC = Stripe()
