"""DOKU (non-SNAP HTTP notification): ``Signature: HMACSHA256=<base64>``.

Documented scheme (developers.doku.com, "Signature Component" for non-SNAP notifications):
base64 HMAC-SHA256(secret key, the component string)::

    Client-Id:<Client-Id>\\nRequest-Id:<Request-Id>\\nRequest-Timestamp:<Request-Timestamp>
    \\nRequest-Target:<notification path>\\nDigest:<base64(sha256(raw body))>

``Request-Timestamp`` is ISO 8601 UTC and is checked against the leeway. Unlike the original
(defect 19), ``TENRUSL_DOKU_CLIENT_ID`` is enforced when set.

Event id: ``order.invoice_number`` plus ``transaction.status`` (one notification per state of
one order), else DOKU's ``Request-Id`` header: that header is DOKU's own delivery id and is
covered by the signature (our correlation id is ``X-Request-ID``, never used as an event id).

Settings: ``TENRUSL_DOKU_SECRET_KEY`` (legacy ``DOKU_SECRET_KEY``), comma-separated for
rotation; ``TENRUSL_DOKU_CLIENT_ID`` (legacy ``DOKU_CLIENT_ID``, comma-separated);
``TENRUSL_DOKU_REQUEST_TARGET`` (legacy ``DOKU_REQUEST_TARGET``; the notification path DOKU
signs, when a proxy rewrites ours; default: the request path); ``TENRUSL_DOKU_LEEWAY_SECONDS``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from receiver.payload import first_string
from receiver.providers.base import Delivery, EventId, Provider, SignedRequest, Verification, matches_any
from receiver.providers.formats import parse_time
from receiver.status import infer_status
from tenrusl.settings import Settings

SECRET_ENV = ("TENRUSL_DOKU_SECRET_KEY", "DOKU_SECRET_KEY")
CLIENT_ENV = ("TENRUSL_DOKU_CLIENT_ID", "DOKU_CLIENT_ID")
TARGET_ENV = ("TENRUSL_DOKU_REQUEST_TARGET", "DOKU_REQUEST_TARGET")
HEADERS = ("Client-Id", "Request-Id", "Request-Timestamp", "Signature")


def component_string(client_id: str, request_id: str, timestamp: str, target: str, body: bytes) -> bytes:
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    return (
        f"Client-Id:{client_id}\nRequest-Id:{request_id}\nRequest-Timestamp:{timestamp}\n"
        f"Request-Target:{target}\nDigest:{digest}"
    ).encode()


def signature(secret: str, components: bytes) -> str:
    return (
        "HMACSHA256="
        + base64.b64encode(hmac.new(secret.encode(), components, hashlib.sha256).digest()).decode()
    )


class DokuProvider(Provider):
    name = "doku"
    signature_headers = ("Signature",)
    event_type_fields = ("type", "event", "service.id")
    payment_ref_fields = (
        "order.invoice_number",
        "invoice_number",
        "order_id",
        "transaction.original_request_id",
    )

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = settings.secrets(*SECRET_ENV)
        self.client_ids = settings.secrets(*CLIENT_ENV)
        target = settings.value(*TARGET_ENV)
        self.target = target if target and target != "/" else None

    async def verify(self, request: SignedRequest) -> Verification:
        if not self.secrets:
            return Verification.reject("missing_secret_key")
        client_id, request_id, timestamp, provided = (request.header(h) for h in HEADERS)
        if not (client_id and request_id and timestamp and provided):
            return Verification.reject("missing_headers")
        if self.client_ids and not matches_any(self.client_ids, [client_id]):
            return Verification.reject("client_id_mismatch")
        moment = parse_time(timestamp)
        if moment is None:
            return Verification.reject("invalid_timestamp")
        if abs(request.now - moment) > self.leeway_s:
            return Verification.reject("timestamp_out_of_tolerance")
        components = component_string(
            client_id, request_id, timestamp, self.target or request.path, request.body
        )
        if matches_any([signature(secret, components) for secret in self.secrets], [provided]):
            return Verification.accept()
        return Verification.reject("invalid_signature")

    def event_id(self, payload: Mapping[str, Any], request: SignedRequest) -> EventId | None:
        found = first_string(payload, self.event_id_fields)
        if found:
            return EventId(found, "payload")
        invoice = first_string(payload, ("order.invoice_number",))
        status = first_string(payload, ("transaction.status",))
        if invoice and status:
            return EventId(f"{invoice}:{status.upper()}", "payload")
        request_id = request.header("Request-Id")
        return EventId(request_id, "header:request-id") if request_id else None

    def payment_status(self, payload: Mapping[str, Any]) -> str:
        return infer_status(payload, ("transaction.status", "status", "data.status"))

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        secrets, clients = settings.secrets(*SECRET_ENV), settings.secrets(*CLIENT_ENV)
        return {
            "secret": secrets[0] if secrets else "",
            "client_id": clients[0] if clients else "BRN-0000-0000000000000",
            "request_target": settings.value(*TARGET_ENV),
        }

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        target = credentials.get("request_target") or path
        target = path if target == "/" else target
        request_id = str(uuid.uuid4())
        timestamp = datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        components = component_string(credentials["client_id"], request_id, timestamp, target, body)
        headers = {
            "Content-Type": "application/json",
            "Client-Id": credentials["client_id"],
            "Request-Id": request_id,
            "Request-Timestamp": timestamp,
            "Signature": signature(credentials["secret"], components),
        }
        return Delivery(body, headers)


PROVIDER = DokuProvider
