"""DOKU (non-SNAP HTTP notification): ``Signature: HMACSHA256=<base64>``.

Documented scheme (developers.doku.com, "Signature Component" for non-SNAP notifications):
base64 HMAC-SHA256(secret key, the component string)::

    Client-Id:<Client-Id>\\nRequest-Id:<Request-Id>\\nRequest-Timestamp:<Request-Timestamp>
    \\nRequest-Target:<notification path>\\nDigest:<base64(sha256(raw body))>

``Request-Timestamp`` is ISO 8601 UTC and is checked against the leeway. Unlike the original
(docs/design-notes.md, defect 19), ``TENRUSL_DOKU_CLIENT_ID`` is enforced when set.

Settings (``tenrusl/providers/doku.py``): ``TENRUSL_DOKU_SECRET_KEY`` (legacy ``DOKU_SECRET_KEY``),
comma-separated for rotation; ``TENRUSL_DOKU_CLIENT_ID`` (legacy ``DOKU_CLIENT_ID``, comma-separated);
``TENRUSL_DOKU_REQUEST_TARGET`` (legacy ``DOKU_REQUEST_TARGET``; the notification path DOKU signs,
when a proxy rewrites ours; default: the request path); ``TENRUSL_DOKU_LEEWAY_SECONDS``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime

from receiver.providers.base import Delivery, Provider, SignedRequest, Verification
from receiver.providers.formats import parse_time
from receiver.providers.samples import Context, Payload, digits, dump, iso, uuid_str
from tenrusl.providers.doku import CLIENT_ID, REQUEST_TARGET, SECRET_KEY
from tenrusl.security import matches_any
from tenrusl.settings import Settings

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

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = SECRET_KEY.read(settings)
        self.client_ids = CLIENT_ID.read(settings)
        target = REQUEST_TARGET.read(settings)
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

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {
            "secret": SECRET_KEY.newest(settings),
            "client_id": CLIENT_ID.newest(settings) or "BRN-0000-0000000000000",
            "request_target": REQUEST_TARGET.read(settings),
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

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
        doc = {
            "service": {"id": "VIRTUAL_ACCOUNT"},
            "acquirer": {"id": "BCA"},
            "channel": {"id": "VIRTUAL_ACCOUNT_BCA"},
            "order": {"invoice_number": ctx.ref, "amount": ctx.amount},
            "virtual_account_info": {"virtual_account_number": digits(ctx.rng, 16)},
            "virtual_account_payment": {
                "identifier": [{"name": "REQUEST_ID", "value": uuid_str(ctx.rng)}],
            },
            "transaction": {
                "status": "SUCCESS",
                "date": iso(ctx.now),
                "original_request_id": uuid_str(ctx.rng),
            },
        }
        return Payload(dump(doc), "VIRTUAL_ACCOUNT")


PROVIDER = DokuProvider
