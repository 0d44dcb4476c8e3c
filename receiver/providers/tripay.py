"""Tripay: ``X-Callback-Signature: hex(HMAC-SHA256(private key, raw JSON body))``.

Documented scheme (tripay.co.id/developer, "Callback"); the header ``X-Callback-Event`` names the
event (``payment_status``).

Settings (``tenrusl/providers/tripay.py``): ``TENRUSL_TRIPAY_PRIVATE_KEY`` (legacy
``TRIPAY_PRIVATE_KEY``), comma-separated for rotation.
"""

from __future__ import annotations

from receiver.providers.base import Delivery, Provider, SignedRequest, Verification, verify_body_hmac
from receiver.providers.samples import Context, Payload, digits, dump, hex_id
from tenrusl.providers.tripay import PRIVATE_KEY
from tenrusl.security import hmac_sha256_hex
from tenrusl.settings import Settings


class TripayProvider(Provider):
    name = "tripay"
    signature_headers = ("X-Callback-Signature",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = PRIVATE_KEY.read(settings)

    async def verify(self, request: SignedRequest) -> Verification:
        return verify_body_hmac(
            self.secrets, request, "X-Callback-Signature", missing_secret="missing_private_key"
        )

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"private_key": PRIVATE_KEY.newest(settings)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        headers = {
            "Content-Type": "application/json",
            "X-Callback-Event": "payment_status",
            "X-Callback-Signature": hmac_sha256_hex(credentials["private_key"], body),
        }
        return Delivery(body, headers)

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
        fee = max(1, ctx.amount // 100)
        doc = {
            "reference": "T" + digits(ctx.rng, 4) + hex_id(ctx.rng, 10).upper(),
            "merchant_ref": ctx.ref,
            "payment_method": "BRI Virtual Account",
            "payment_method_code": "BRIVA",
            "total_amount": ctx.amount,
            "fee_merchant": fee,
            "fee_customer": 0,
            "total_fee": fee,
            "amount_received": ctx.amount - fee,
            "is_closed_payment": 1,
            "status": "PAID",
            "paid_at": int(ctx.now),
            "note": None,
        }
        return Payload(dump(doc), "payment_status")


PROVIDER = TripayProvider
