"""The mock provider: for demos and tests, with the original's two schemes.

Either ``Authorization: Bearer <secret>`` or ``X-Mock-Signature: hex(HMAC-SHA256(secret, raw))``.
Unlike the original (docs/design-notes.md, defect 19), a wrong Bearer token does not hide a valid
HMAC: the delivery is accepted when any scheme it carries verifies.

Settings (``tenrusl/providers/mock.py``): ``TENRUSL_MOCK_SECRET`` (legacy ``MOCK_SECRET``),
comma-separated for rotation; ``changeme`` outside production when unset.
"""

from __future__ import annotations

from receiver.providers.base import Delivery, Provider, SignedRequest, Verification, strip_prefix
from receiver.providers.samples import Context, Payload, dump, hex_id, iso
from tenrusl.providers.mock import SECRET
from tenrusl.security import hmac_matches, hmac_sha256_hex, matches_any
from tenrusl.settings import Settings


class MockProvider(Provider):
    name = "mock"
    signature_headers = ("X-Mock-Signature",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = SECRET.read(settings)

    async def verify(self, request: SignedRequest) -> Verification:
        if not self.secrets:
            return Verification.reject("missing_secret")
        auth = request.header("Authorization")
        signature = strip_prefix(request.header("X-Mock-Signature"))
        if not auth and not signature:
            return Verification.reject("missing_signature")
        if signature and hmac_matches(self.secrets, request.body, [signature]):
            return Verification.accept("ok_hmac")
        if auth[:7].lower() == "bearer " and matches_any(self.secrets, [auth[7:].strip()]):
            return Verification.accept("ok_bearer")
        return Verification.reject("invalid_signature" if signature else "invalid_bearer_token")

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"secret": SECRET.newest(settings)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        headers = {
            "Content-Type": "application/json",
            "X-Mock-Signature": hmac_sha256_hex(credentials["secret"], body),
        }
        return Delivery(body, headers)

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
        doc = {
            "id": f"evt_{hex_id(ctx.rng)}",
            "type": "payment.succeeded",
            "status": "succeeded",
            "provider_ref": ctx.ref,
            "amount": ctx.amount,
            "currency": ctx.currency,
            "created_at": iso(ctx.now),
        }
        return Payload(dump(doc), "payment.succeeded")


PROVIDER = MockProvider
