"""Payoneer: the original's callback schemes (no public HMAC scheme is documented).

Payoneer documents IPN/IPCN callbacks without a public body-signature scheme (verification is
by source IP and an API status check), so this keeps the original's schemes, any one of which
passes: ``Authorization: Bearer <shared secret>``, or ``X-Payoneer-Signature:
hex(HMAC-SHA256(shared secret, raw body))`` (only this one protects the body).

Fixed from the original (docs/design-notes.md, defect 19): when ``TENRUSL_PAYONEER_MERCHANT_ID`` is
set, ``X-Payoneer-Merchant-Id`` is required and must match (the original let a missing header pass).

Settings (``tenrusl/providers/payoneer.py``): ``TENRUSL_PAYONEER_SHARED_SECRET`` (legacy
``PAYONEER_SHARED_SECRET``) and ``TENRUSL_PAYONEER_MERCHANT_ID`` (legacy ``PAYONEER_MERCHANT_ID``),
both comma-separated.
"""

from __future__ import annotations

from receiver.providers.base import Delivery, Provider, SignedRequest, Verification, strip_prefix
from receiver.providers.samples import Context, Payload, digits, dump, hex_id, iso, major
from tenrusl.providers.payoneer import MERCHANT_ID, SECRET
from tenrusl.security import hmac_matches, hmac_sha256_hex, matches_any
from tenrusl.settings import Settings


class PayoneerProvider(Provider):
    name = "payoneer"
    currency = "USD"
    signature_headers = ("X-Payoneer-Signature",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = SECRET.read(settings)
        self.merchant_ids = MERCHANT_ID.read(settings)

    async def verify(self, request: SignedRequest) -> Verification:
        if not self.secrets:
            return Verification.reject("missing_secret")
        if self.merchant_ids:
            merchant = request.header("X-Payoneer-Merchant-Id")
            if not merchant:
                return Verification.reject("missing_merchant_header")
            if not matches_any(self.merchant_ids, [merchant]):
                return Verification.reject("merchant_mismatch")
        auth = request.header("Authorization")
        signature = strip_prefix(request.header("X-Payoneer-Signature"))
        if not auth and not signature:
            return Verification.reject("missing_signature")
        if auth[:7].lower() == "bearer " and matches_any(self.secrets, [auth[7:].strip()]):
            return Verification.accept("ok_bearer")
        if signature and hmac_matches(self.secrets, request.body, [signature]):
            return Verification.accept("ok_hmac")
        return Verification.reject("invalid_signature")

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"secret": SECRET.newest(settings), "merchant_id": MERCHANT_ID.newest(settings)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        headers = {
            "Content-Type": "application/json",
            "X-Payoneer-Signature": hmac_sha256_hex(credentials["secret"], body),
        }
        if credentials.get("merchant_id"):
            headers["X-Payoneer-Merchant-Id"] = credentials["merchant_id"]
        return Delivery(body, headers)

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
        doc = {
            "id": f"evt_{hex_id(ctx.rng)}",
            "event": "payment.completed",
            "paymentId": digits(ctx.rng, 9),
            "client_reference_id": ctx.ref,
            "status": "completed",
            "amount": major(ctx),
            "currency": ctx.currency,
            "created_at": iso(ctx.now),
        }
        return Payload(dump(doc), "payment.completed")


PROVIDER = PayoneerProvider
