"""Amazon Buy with Prime: ``x-amzn-signature`` (ES384) with the key named by ``x-amzn-kid``.

Scheme (Buy with Prime webhook destinations, optional payload signature, as the original
implemented it): base64 DER ECDSA P-384 / SHA-384 over the raw body; the public key is the JWK
with that ``kid`` in Amazon's JWKS (cached 24 h; an unknown kid refetches at most once per
``TENRUSL_AMZN_BWP_JWKS_REFETCH_SECONDS``, see ``jwks.py``). Events use the EventBridge envelope:
``id``, ``detail-type`` and ``detail.*``; they are thin, so confirm details through the API.

Settings (``tenrusl/providers/amazon_bwp.py``): ``TENRUSL_AMZN_BWP_JWKS_URL`` (default ``https://api.buywithprime.amazon.com/jwks.json``),
``TENRUSL_AMZN_BWP_JWKS_TTL_SECONDS`` (86400), ``TENRUSL_AMZN_BWP_JWKS_REFETCH_SECONDS`` (60);
``TENRUSL_AMZN_BWP_SIM_PRIVATE_KEY`` / ``TENRUSL_AMZN_BWP_SIM_KID`` for ``sign`` only. Key
rotation is the JWKS's: every kid it lists is accepted.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from receiver.providers.base import Delivery, Provider, SignedRequest, Verification
from receiver.providers.crypto import b64decode_strict, ecdsa_sha384_verifies
from receiver.providers.jwks import JwksCache
from receiver.providers.samples import Context, Payload, dump, iso, uuid_str
from tenrusl.providers.amazon_bwp import (
    JWKS_REFETCH_SECONDS,
    JWKS_TTL_SECONDS,
    JWKS_URL,
    SIM_KID,
    SIM_PRIVATE_KEY,
)
from tenrusl.providers.keys import load_private_key
from tenrusl.settings import Settings


class AmazonBwpProvider(Provider):
    name = "amazon_bwp"
    currency = "USD"
    signature_headers = ("x-amzn-signature", "x-amzn-kid")

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.jwks = JwksCache(
            JWKS_URL.read(settings),
            ttl_s=JWKS_TTL_SECONDS.read(settings),
            refetch_floor_s=JWKS_REFETCH_SECONDS.read(settings),
        )

    async def verify(self, request: SignedRequest) -> Verification:
        encoded, kid = request.header("x-amzn-signature"), request.header("x-amzn-kid")
        if not encoded:
            return Verification.reject("missing_signature_header")
        if not kid:
            return Verification.reject("missing_kid_header")
        signature = b64decode_strict(encoded)
        if signature is None:
            return Verification.reject("invalid_signature_base64")
        key = await self.jwks.key(kid)
        if key is None:
            return Verification.reject("public_key_unavailable")
        if ecdsa_sha384_verifies(key, signature, request.body):
            return Verification.accept()
        return Verification.reject("invalid_signature")

    async def close(self) -> None:
        await self.jwks.close()

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {
            "private_key": SIM_PRIVATE_KEY.read(settings),
            "kid": SIM_KID.read(settings),
        }

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        if not credentials.get("private_key"):
            raise ValueError("set TENRUSL_AMZN_BWP_SIM_PRIVATE_KEY to sign Buy with Prime events")
        key = load_private_key(credentials["private_key"])
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the Buy with Prime signing key must be an EC P-384 key")
        signature = key.sign(body, ec.ECDSA(hashes.SHA384()))
        headers = {
            "Content-Type": "application/json",
            "x-amzn-signature": base64.b64encode(signature).decode(),
            "x-amzn-kid": credentials["kid"],
        }
        return Delivery(body, headers)

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
        doc = {
            "version": "0",
            "id": uuid_str(ctx.rng),
            "detail-type": "ORDER_PAYMENT_CAPTURED",
            "source": "buywithprime",
            "time": iso(ctx.now),
            "type": "ORDER_PAYMENT_CAPTURED",
            "detail": {
                "orderId": ctx.ref,
                "externalId": ctx.ref,
                "status": "captured",
                "amount": {"value": ctx.amount, "currencyCode": ctx.currency},
            },
        }
        return Payload(dump(doc), "ORDER_PAYMENT_CAPTURED")


PROVIDER = AmazonBwpProvider
