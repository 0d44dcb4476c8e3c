"""DANA (SNAP BI notification): ``X-SIGNATURE`` = base64 SHA256withRSA by DANA's private key.

Documented scheme (dashboard.dana.id/api-docs, SNAP "Finish Notify"; Bank Indonesia SNAP
asymmetric signature): the string to sign is
``POST:<relative path>:lowercase(hex(sha256(minify(body)))):<X-TIMESTAMP>``, where minify drops
the JSON whitespace outside strings and ``X-TIMESTAMP`` is ISO 8601 with an offset; the
timestamp is checked against the leeway.

Compatibility: the original verified SHA256withRSA directly over the raw body (a
simplification, defect 19). ``TENRUSL_DANA_SIGNATURE_MODE=raw`` keeps that form for senders
built against it; the default is ``snap``.

Settings: ``TENRUSL_DANA_PUBLIC_KEY`` (legacy ``DANA_PUBLIC_KEY``): one or more PEM blocks or
bare base64 keys, for rotation; ``TENRUSL_DANA_REQUEST_PATH`` (the path DANA signs, when a proxy
rewrites ours); ``TENRUSL_DANA_LEEWAY_SECONDS``; ``TENRUSL_DANA_SIM_PRIVATE_KEY`` (``sign`` only).
Event id: ``originalReferenceNo`` + ``latestTransactionStatus``, else the ``X-EXTERNAL-ID``
header (DANA's own, unique per day). Our payment is ``originalPartnerReferenceNo``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from receiver.payload import first_string
from receiver.providers.base import Delivery, EventId, Provider, SignedRequest, Verification
from receiver.providers.crypto import b64decode_strict, load_public_keys, rsa_sign, rsa_verifies
from receiver.providers.formats import minify_json, parse_time
from receiver.status import infer_status
from tenrusl.constants import PAYMENT_FAILED, PAYMENT_PENDING, PAYMENT_SUCCEEDED
from tenrusl.settings import Settings

KEY_ENV = ("TENRUSL_DANA_PUBLIC_KEY", "DANA_PUBLIC_KEY")
MODE_ENV = "TENRUSL_DANA_SIGNATURE_MODE"
MODES = ("snap", "raw")
# SNAP latestTransactionStatus codes: 00 success, 05 cancelled, 06 failed; others in flight.
SNAP_STATUS = {"00": PAYMENT_SUCCEEDED, "05": PAYMENT_FAILED, "06": PAYMENT_FAILED}
JAKARTA = timezone(timedelta(hours=7))


def _mode(value: str) -> str:
    if value.lower() not in MODES:
        raise ValueError(f"accepted values: {', '.join(MODES)}")
    return value.lower()


def string_to_sign(path: str, body: bytes, timestamp: str) -> bytes:
    body_hash = hashlib.sha256(minify_json(body)).hexdigest()
    return f"POST:{path}:{body_hash}:{timestamp}".encode()


class DanaProvider(Provider):
    name = "dana"
    signature_headers = ("X-SIGNATURE",)
    payment_ref_fields = ("originalPartnerReferenceNo", "partnerReferenceNo", *Provider.payment_ref_fields)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.keys = settings.parsed(load_public_keys, *KEY_ENV, default=())
        self.mode = settings.parsed(_mode, MODE_ENV, default="snap")
        self.path = settings.value("TENRUSL_DANA_REQUEST_PATH")

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

    def event_id(self, payload: Mapping[str, Any], request: SignedRequest) -> EventId | None:
        found = first_string(payload, self.event_id_fields)
        if found:
            return EventId(found, "payload")
        reference = first_string(payload, ("originalReferenceNo",))
        status = first_string(payload, ("latestTransactionStatus",))
        if reference and status:
            return EventId(f"{reference}:{status}", "payload")
        external = request.header("X-EXTERNAL-ID")
        return EventId(external, "header:x-external-id") if external else super().event_id(payload, request)

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        code = payload.get("latestTransactionStatus")
        if isinstance(code, str):
            return SNAP_STATUS.get(code, PAYMENT_PENDING)
        return infer_status(payload)

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {
            "private_key": settings.value("TENRUSL_DANA_SIM_PRIVATE_KEY"),
            "mode": settings.value(MODE_ENV, default="snap").lower(),
            "request_path": settings.value("TENRUSL_DANA_REQUEST_PATH"),
            "partner_id": settings.value("TENRUSL_DANA_PARTNER_ID", default="DANA"),
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


PROVIDER = DanaProvider
