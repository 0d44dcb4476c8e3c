"""Paddle notifications: Billing (JSON, ``event_type``) and Classic (form, ``alert_name``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenrusl.constants import PAYMENT_FAILED, PAYMENT_SUCCEEDED
from tenrusl.providers.base import ProviderSpec
from tenrusl.providers.config import Parsed, Text, Values
from tenrusl.providers.keys import PublicKeyTypes, load_public_keys

SECRET = Values(("TENRUSL_PADDLE_SIGNING_SECRET", "PADDLE_SIGNING_SECRET"))
PUBLIC_KEY: Parsed[tuple[PublicKeyTypes, ...]] = Parsed(
    ("TENRUSL_PADDLE_PUBLIC_KEY", "PADDLE_PUBLIC_KEY"), load_public_keys, default=()
)
SIM_PRIVATE_KEY = Text(("TENRUSL_PADDLE_SIM_PRIVATE_KEY",), secret=True, sign_only=True)

TYPE_STATUS = {
    "transaction.completed": PAYMENT_SUCCEEDED,
    "transaction.paid": PAYMENT_SUCCEEDED,
    "transaction.canceled": PAYMENT_FAILED,
    "payment_succeeded": PAYMENT_SUCCEEDED,
    "subscription_payment_succeeded": PAYMENT_SUCCEEDED,
}


class Paddle(ProviderSpec):
    name = "paddle"
    event_id_fields = ("event_id", "alert_id", "id")
    event_type_fields = ("event_type", "alert_name", "type")
    payment_ref_fields = (
        "data.custom_data.provider_ref",
        "data.custom_data.order_id",
        "passthrough",
        "data.id",
        "order_id",
        "checkout_id",
    )
    status_fields = ("data.status", "status")
    variables = (SECRET, PUBLIC_KEY, SIM_PRIVATE_KEY)

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        kind = payload.get("event_type") or payload.get("alert_name")
        return TYPE_STATUS.get(str(kind or "")) or super().payment_status(payload)


SPEC = Paddle()
