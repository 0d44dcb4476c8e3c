"""PayPal webhook events: the payment is ``resource``; ``custom_id`` / ``invoice_id`` are ours.

The event type settles a payment when it can; a refund resource says COMPLETED, so refund types
map to pending rather than to a successful payment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenrusl.constants import PAYMENT_FAILED, PAYMENT_PENDING, PAYMENT_SUCCEEDED
from tenrusl.providers.base import ProviderSpec
from tenrusl.providers.config import Choice, Text, Values
from tenrusl.providers.fields import first_string
from tenrusl.providers.payment_status import infer_status

CLIENT_ID = Values(("TENRUSL_PAYPAL_CLIENT_ID", "PAYPAL_CLIENT_ID"))
CLIENT_SECRET = Values(("TENRUSL_PAYPAL_CLIENT_SECRET", "PAYPAL_CLIENT_SECRET"))
WEBHOOK_ID = Values(("TENRUSL_PAYPAL_WEBHOOK_ID", "PAYPAL_WEBHOOK_ID"), secret=False)
ENV = Choice(("TENRUSL_PAYPAL_ENV", "PAYPAL_ENV"), ("live", "sandbox"), "sandbox", production_default="live")
API_BASE = Text(("TENRUSL_PAYPAL_API_BASE",))
SIM_PRIVATE_KEY = Text(("TENRUSL_PAYPAL_SIM_PRIVATE_KEY",), secret=True, sign_only=True)
SIM_CERT_URL = Text(
    ("TENRUSL_PAYPAL_SIM_CERT_URL",),
    default="https://api.sandbox.paypal.com/v1/notifications/certs/sim",
    sign_only=True,
)

TYPE_STATUS = {
    "PAYMENT.CAPTURE.COMPLETED": PAYMENT_SUCCEEDED,
    "PAYMENT.SALE.COMPLETED": PAYMENT_SUCCEEDED,
    "CHECKOUT.ORDER.COMPLETED": PAYMENT_SUCCEEDED,
    "PAYMENT.CAPTURE.DENIED": PAYMENT_FAILED,
    "PAYMENT.CAPTURE.DECLINED": PAYMENT_FAILED,
    "PAYMENT.SALE.DENIED": PAYMENT_FAILED,
    "CHECKOUT.ORDER.VOIDED": PAYMENT_FAILED,
    # A refund resource says COMPLETED: it must not read as a successful payment.
    "PAYMENT.CAPTURE.REFUNDED": PAYMENT_PENDING,
    "PAYMENT.CAPTURE.REVERSED": PAYMENT_PENDING,
    "PAYMENT.SALE.REFUNDED": PAYMENT_PENDING,
}


class Paypal(ProviderSpec):
    name = "paypal"
    event_id_fields = ("id",)
    event_type_fields = ("event_type", "type")
    payment_ref_fields = (
        "resource.custom_id",
        "resource.invoice_id",
        "resource.supplementary_data.related_ids.order_id",
        "resource.id",
    )
    status_fields = ("resource.status", "status")
    variables = (CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID, ENV, API_BASE, SIM_PRIVATE_KEY, SIM_CERT_URL)

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        kind = str(payload.get("event_type", ""))
        if kind in TYPE_STATUS:
            return TYPE_STATUS[kind]
        return infer_status(payload, self.status_fields)

    def payment_ref(self, payload: Mapping[str, Any]) -> str | None:
        resource = payload.get("resource")
        units = resource.get("purchase_units") if isinstance(resource, Mapping) else None
        if isinstance(units, list) and units and isinstance(units[0], Mapping):
            found = first_string(units[0], ("custom_id", "invoice_id", "reference_id"))
            if found:
                return found
        return super().payment_ref(payload)


SPEC = Paypal()
