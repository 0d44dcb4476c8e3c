"""Tripay: ``X-Callback-Signature: hex(HMAC-SHA256(private key, raw JSON body))``.

Documented scheme (tripay.co.id/developer, "Callback"); the header ``X-Callback-Event`` names the
event (``payment_status``).

Settings (``tenrusl/providers/tripay.py``): ``TENRUSL_TRIPAY_PRIVATE_KEY`` (legacy
``TRIPAY_PRIVATE_KEY``), comma-separated for rotation.
"""

from __future__ import annotations

from receiver.providers.base import Delivery, Provider, SignedRequest, Verification, verify_body_hmac
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


PROVIDER = TripayProvider
