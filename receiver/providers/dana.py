"""DANA (SNAP BI notification): ``X-SIGNATURE`` = base64 SHA256withRSA by DANA's private key.

Documented scheme (dashboard.dana.id/api-docs, SNAP "Finish Notify"; Bank Indonesia SNAP
asymmetric signature): the string to sign is
``POST:<relative path>:lowercase(hex(sha256(minify(body)))):<X-TIMESTAMP>``, where minify drops
the JSON whitespace outside strings and ``X-TIMESTAMP`` is ISO 8601 with an offset; the
timestamp is checked against the leeway.

Compatibility: the original verified SHA256withRSA directly over the raw body (a simplification,
docs/design-notes.md, defect 19). ``TENRUSL_DANA_SIGNATURE_MODE=raw`` keeps that form for senders
built against it; the default is ``snap``.

Settings (``tenrusl/providers/dana.py``): ``TENRUSL_DANA_PUBLIC_KEY`` (legacy
``DANA_PUBLIC_KEY``): one or more PEM blocks or bare base64 keys, for rotation;
``TENRUSL_DANA_REQUEST_PATH`` (the path DANA signs, when a proxy rewrites ours);
``TENRUSL_DANA_LEEWAY_SECONDS``; ``TENRUSL_DANA_SIM_PRIVATE_KEY`` (``sign`` only).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta, timezone

from receiver.providers.base import Delivery, Provider, SignedRequest, Verification
from receiver.providers.crypto import b64decode_strict, rsa_sign, rsa_verifies
from receiver.providers.formats import minify_json, parse_time
from receiver.providers.samples import Context, Payload, digits, dump, iso, major
from tenrusl.providers.dana import PARTNER_ID, PUBLIC_KEY, REQUEST_PATH, SIGNATURE_MODE, SIM_PRIVATE_KEY
from tenrusl.settings import Settings

JAKARTA = timezone(timedelta(hours=7))


def string_to_sign(path: str, body: bytes, timestamp: str) -> bytes:
    body_hash = hashlib.sha256(minify_json(body)).hexdigest()
    return f"POST:{path}:{body_hash}:{timestamp}".encode()


class DanaProvider(Provider):
    name = "dana"
    signature_headers = ("X-SIGNATURE",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.keys = PUBLIC_KEY.read(settings)
        self.mode = SIGNATURE_MODE.read(settings)
        self.path = REQUEST_PATH.read(settings)

    async def verify(self, request: SignedRequest) -> Verification:
        if not self.keys:
            return Verification.reject("missing_public_key")
        encoded = request.header("X-SIGNATURE")
        if not encoded:
            return Verification.reject("missing_signature_header")
        signature = b64decode_strict(encoded)
        if signature is None:
            return Verification.reject("invalid_signature_base64")
        if self.mode == "raw":
            message = request.body
        else:
            timestamp = request.header("X-TIMESTAMP")
            moment = parse_time(timestamp)
            if moment is None:
                return Verification.reject("missing_or_invalid_timestamp")
            if abs(request.now - moment) > self.leeway_s:
                return Verification.reject("timestamp_out_of_tolerance")
            message = string_to_sign(self.path or request.path, request.body, timestamp)
        if rsa_verifies(self.keys, signature, message, "sha256"):
            return Verification.accept(f"ok_{self.mode}")
        return Verification.reject("invalid_signature")

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {
            "private_key": SIM_PRIVATE_KEY.read(settings),
            "mode": SIGNATURE_MODE.read(settings),
            "request_path": REQUEST_PATH.read(settings),
            "partner_id": PARTNER_ID.read(settings),
        }

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        if not credentials.get("private_key"):
            raise ValueError("set TENRUSL_DANA_SIM_PRIVATE_KEY to sign DANA notifications")
        timestamp = datetime.fromtimestamp(int(now), UTC).astimezone(JAKARTA).isoformat()
        if credentials.get("mode") == "raw":
            message = body
        else:
            message = string_to_sign(credentials.get("request_path") or path, body, timestamp)
        signed = base64.b64encode(rsa_sign(credentials["private_key"], message, "sha256")).decode()
        headers = {
            "Content-Type": "application/json",
            "X-TIMESTAMP": timestamp,
            "X-SIGNATURE": signed,
            "X-PARTNER-ID": credentials.get("partner_id") or "DANA",
            "X-EXTERNAL-ID": hashlib.sha256(body + timestamp.encode()).hexdigest()[:32],
            "CHANNEL-ID": "95221",
        }
        return Delivery(body, headers)

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
        doc = {
            "originalPartnerReferenceNo": ctx.ref,
            "originalReferenceNo": datetime.fromtimestamp(ctx.now, UTC).strftime("%Y%m%d")
            + digits(ctx.rng, 20),
            "merchantId": "2166" + digits(ctx.rng, 12),
            "amount": {"value": major(ctx), "currency": ctx.currency},
            "latestTransactionStatus": "00",
            "transactionStatusDesc": "SUCCESS",
            "createdTime": iso(ctx.now),
            "finishedTime": iso(ctx.now),
        }
        return Payload(dump(doc), None)


PROVIDER = DanaProvider
