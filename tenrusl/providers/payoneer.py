"""Payoneer callbacks: the generic reading rules, with Payoneer's own reference fields first."""

from __future__ import annotations

from tenrusl.providers.base import ProviderSpec
from tenrusl.providers.config import Values

SECRET = Values(("TENRUSL_PAYONEER_SHARED_SECRET", "PAYONEER_SHARED_SECRET"))
# When set, X-Payoneer-Merchant-Id is required and must be one of these.
MERCHANT_ID = Values(("TENRUSL_PAYONEER_MERCHANT_ID", "PAYONEER_MERCHANT_ID"), secret=False)


class Payoneer(ProviderSpec):
    name = "payoneer"
    payment_ref_fields = (
        "client_reference_id",
        "clientReferenceId",
        *ProviderSpec.payment_ref_fields,
        "paymentId",
    )
    variables = (SECRET, MERCHANT_ID)


SPEC = Payoneer()
