"""Amazon Buy with Prime events, in the EventBridge envelope: ``id``, ``detail-type``, ``detail.*``.

They are thin: confirm details through the API. Keys come from Amazon's JWKS (URL and cache
times below); every kid it lists is accepted, so key rotation is Amazon's.
"""

from __future__ import annotations

from tenrusl.providers.base import ProviderSpec
from tenrusl.providers.config import Parsed, Text

JWKS_URL = Text(("TENRUSL_AMZN_BWP_JWKS_URL",), default="https://api.buywithprime.amazon.com/jwks.json")
JWKS_TTL_SECONDS = Parsed(("TENRUSL_AMZN_BWP_JWKS_TTL_SECONDS",), float, default=86400.0)
# An unknown kid refetches the JWKS at most this often.
JWKS_REFETCH_SECONDS = Parsed(("TENRUSL_AMZN_BWP_JWKS_REFETCH_SECONDS",), float, default=60.0)
SIM_PRIVATE_KEY = Text(("TENRUSL_AMZN_BWP_SIM_PRIVATE_KEY",), secret=True, sign_only=True)
SIM_KID = Text(("TENRUSL_AMZN_BWP_SIM_KID",), default="sim-key-1", sign_only=True)


class AmazonBwp(ProviderSpec):
    name = "amazon_bwp"
    event_id_fields = ("id", "event_id")
    event_type_fields = ("detail-type", "type", "event_type")
    payment_ref_fields = (
        "detail.externalId",
        "detail.merchantOrderId",
        "detail.orderId",
        "detail.order.id",
        "detail.id",
    )
    status_fields = ("detail.status", "detail.paymentStatus", "detail.order.status", "status")
    variables = (JWKS_URL, JWKS_TTL_SECONDS, JWKS_REFETCH_SECONDS, SIM_PRIVATE_KEY, SIM_KID)


SPEC = AmazonBwp()
