"""OY! Indonesia: the original's callback schemes, plus OY!'s documented IP allowlist.

OY! documents no body-HMAC header for its (non-SNAP) callbacks: it documents a source-IP
allowlist and an "Authorization Callback" gate, and recommends confirming the status through its
API. So this keeps the original's schemes, any one of which passes: ``Authorization: Bearer
<secret>``, ``X-Callback-Auth`` / ``X-OY-Callback-Auth`` equal to the secret, or
``X-OY-Signature: hex(HMAC-SHA256(secret, raw body))`` (only this one protects the body).

Settings (``tenrusl/providers/oy.py``): ``TENRUSL_OY_CALLBACK_SECRET`` (legacy
``OY_CALLBACK_SECRET``), comma-separated for rotation; ``TENRUSL_OY_IP_WHITELIST`` (legacy
``OY_IP_WHITELIST``): comma-separated source IPs, checked first when set (behind a proxy, set
``TENRUSL_TRUSTED_PROXIES``).
"""

from __future__ import annotations

from datetime import UTC, datetime

from receiver.providers.base import Delivery, Provider, SignedRequest, Verification, strip_prefix
from receiver.providers.samples import Context, Payload, digits, dump, uuid_str
from tenrusl.providers.oy import IP_WHITELIST, SECRET
from tenrusl.security import hmac_matches, hmac_sha256_hex, matches_any
from tenrusl.settings import Settings


class OyProvider(Provider):
    name = "oy"
    signature_headers = ("X-OY-Signature",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = SECRET.read(settings)
        self.allowed_ips = IP_WHITELIST.read(settings)

    async def verify(self, request: SignedRequest) -> Verification:
        if self.allowed_ips and request.remote_ip not in self.allowed_ips:
            return Verification.reject("ip_not_allowed")
        if not self.secrets:
            return Verification.reject("missing_secret")
        auth = request.header("Authorization")
        static = request.header("X-Callback-Auth") or request.header("X-OY-Callback-Auth")
        signature = strip_prefix(request.header("X-OY-Signature"))
        if not (auth or static or signature):
            return Verification.reject("missing_signature")
        if auth[:7].lower() == "bearer " and matches_any(self.secrets, [auth[7:].strip()]):
            return Verification.accept("ok_bearer")
        if static and matches_any(self.secrets, [static]):
            return Verification.accept("ok_static_token")
        if signature and hmac_matches(self.secrets, request.body, [signature]):
            return Verification.accept("ok_hmac")
        return Verification.reject("invalid_signature")

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"secret": SECRET.newest(settings)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        headers = {
            "Content-Type": "application/json",
            "X-OY-Signature": hmac_sha256_hex(credentials["secret"], body),
        }
        return Delivery(body, headers)

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
        doc = {
            "partner_trx_id": ctx.ref,
            "trx_id": uuid_str(ctx.rng),
            "amount": ctx.amount,
            "status": {"code": "000", "message": "Success"},
            "sender_bank": "014",
            "recipient_bank": "014",
            "recipient_account": digits(ctx.rng, 10),
            "timestamp": datetime.fromtimestamp(ctx.now, UTC).strftime("%d-%m-%Y %H:%M:%S"),
        }
        return Payload(dump(doc), None)


PROVIDER = OyProvider
