"""Airwallex events: ``id`` and ``name``; the payment is ``data.object`` (``merchant_order_id`` is ours)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenrusl.constants import PAYMENT_FAILED, PAYMENT_SUCCEEDED
from tenrusl.providers.base import ProviderSpec
from tenrusl.providers.config import Values

SECRET = Values(("TENRUSL_AIRWALLEX_WEBHOOK_SECRET", "AIRWALLEX_WEBHOOK_SECRET"))

NAME_STATUS = {
    "payment_intent.succeeded": PAYMENT_SUCCEEDED,
    "payment_attempt.paid": PAYMENT_SUCCEEDED,
    "payment_intent.cancelled": PAYMENT_FAILED,
    "payment_attempt.failed_to_process": PAYMENT_FAILED,
}


class Airwallex(ProviderSpec):
    name = "airwallex"
    event_type_fields = ("name", "type", "event_type")
    payment_ref_fields = (
        "data.object.merchant_order_id",
        "data.object.metadata.provider_ref",
        "data.object.payment_intent_id",
        "data.object.id",
    )
    status_fields = ("data.object.status", "status")
    variables = (SECRET,)

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        return NAME_STATUS.get(str(payload.get("name", ""))) or super().payment_status(payload)


SPEC = Airwallex()
