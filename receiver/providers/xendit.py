"""Xendit: ``x-callback-token`` equals the dashboard's callback verification token.

Documented scheme (docs.xendit.co, "Webhook" / "Callback verification token"): a static token,
not an HMAC, so the body is not integrity-protected; compare it in constant time.

Settings (``tenrusl/providers/xendit.py``): ``TENRUSL_XENDIT_CALLBACK_TOKEN`` (legacy
``XENDIT_CALLBACK_TOKEN``; ``changeme`` outside production when unset, as in the original),
comma-separated for rotation.
"""

from __future__ import annotations

from receiver.providers.base import Delivery, Provider, SignedRequest, Verification
from receiver.providers.samples import Context, Payload, digits, dump, hex_id, iso
from tenrusl.providers.xendit import TOKEN
from tenrusl.security import matches_any
from tenrusl.settings import Settings


class XenditProvider(Provider):
    name = "xendit"
    signature_headers = ()  # the token is a secret: never fingerprinted

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.tokens = TOKEN.read(settings)

    async def verify(self, request: SignedRequest) -> Verification:
        if not self.tokens:
            return Verification.reject("missing_expected_token")
        token = request.header("x-callback-token")
        if not token:
            return Verification.reject("missing_token_header")
        if matches_any(self.tokens, [token]):
            return Verification.accept()
        return Verification.reject("invalid_token")

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"token": TOKEN.newest(settings)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        return Delivery(body, {"Content-Type": "application/json", "x-callback-token": credentials["token"]})

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
        doc = {
            "id": hex_id(ctx.rng),
            "external_id": ctx.ref,
            "user_id": hex_id(ctx.rng),
            "is_high": False,
            "payment_method": "BANK_TRANSFER",
            "status": "PAID",
            "merchant_name": "TenRusl Demo",
            "amount": ctx.amount,
            "paid_amount": ctx.amount,
            "bank_code": "BCA",
            "paid_at": iso(ctx.now, millis=True),
            "payer_email": "buyer@example.com",
            "description": "Invoice",
            "currency": ctx.currency,
            "payment_channel": "BCA",
            "payment_destination": digits(ctx.rng, 10),
            "created": iso(ctx.now, millis=True),
            "updated": iso(ctx.now, millis=True),
        }
        return Payload(dump(doc), None)


PROVIDER = XenditProvider
