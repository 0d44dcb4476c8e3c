"""PayPal: ``PAYPAL-TRANSMISSION-*`` headers, verified by PayPal's verify-webhook-signature API.

Documented scheme (developer.paypal.com, "Webhooks: verify signature"): PayPal signs
``<transmission id>|<transmission time>|<webhook id>|<crc32(raw body)>`` with SHA256withRSA
(certificate at ``PAYPAL-CERT-URL``); we post the headers, our webhook id and the event to
``/v1/notifications/verify-webhook-signature`` and accept on ``SUCCESS`` (client in
``paypal_api.py``). ``PAYPAL-TRANSMISSION-TIME`` is also checked against the leeway locally, so
a replayed old transmission costs no API call.

Settings (``tenrusl/providers/paypal.py``): ``TENRUSL_PAYPAL_CLIENT_ID`` /
``TENRUSL_PAYPAL_CLIENT_SECRET`` (legacy ``PAYPAL_*``; comma-separated pairs, tried in order),
``TENRUSL_PAYPAL_WEBHOOK_ID`` (comma-separated: each is tried), ``TENRUSL_PAYPAL_ENV`` (``live`` in
production, else ``sandbox``), ``TENRUSL_PAYPAL_API_BASE`` (overrides the env's base URL),
``TENRUSL_PAYPAL_LEEWAY_SECONDS``; ``TENRUSL_PAYPAL_SIM_PRIVATE_KEY`` /
``TENRUSL_PAYPAL_SIM_CERT_URL`` for ``sign`` only.
"""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from datetime import UTC, datetime

from receiver.providers.base import Delivery, Provider, SignedRequest, Verification
from receiver.providers.crypto import rsa_sign
from receiver.providers.formats import parse_time
from receiver.providers.paypal_api import PaypalApi
from receiver.providers.remote import RemoteError
from receiver.providers.samples import Context, Payload, dump, hex_id, iso, major
from tenrusl.providers.paypal import (
    API_BASE,
    CLIENT_ID,
    CLIENT_SECRET,
    ENV,
    SIM_CERT_URL,
    SIM_PRIVATE_KEY,
    WEBHOOK_ID,
)
from tenrusl.settings import Settings

BASE_URLS = {"live": "https://api-m.paypal.com", "sandbox": "https://api-m.sandbox.paypal.com"}
HEADERS = {
    "transmission_id": "PAYPAL-TRANSMISSION-ID",
    "transmission_time": "PAYPAL-TRANSMISSION-TIME",
    "transmission_sig": "PAYPAL-TRANSMISSION-SIG",
    "cert_url": "PAYPAL-CERT-URL",
    "auth_algo": "PAYPAL-AUTH-ALGO",
}


def signed_message(transmission_id: str, time_: str, webhook_id: str, body: bytes) -> bytes:
    return f"{transmission_id}|{time_}|{webhook_id}|{zlib.crc32(body)}".encode()


class PaypalProvider(Provider):
    name = "paypal"
    currency = "USD"
    signature_headers = tuple(HEADERS.values())

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        ids = CLIENT_ID.read(settings)
        secrets = CLIENT_SECRET.read(settings)
        self.webhook_ids = WEBHOOK_ID.read(settings)
        base = API_BASE.read(settings) or BASE_URLS[ENV.read(settings)]
        self.api = PaypalApi(base, list(zip(ids, secrets, strict=False)))

    async def verify(self, request: SignedRequest) -> Verification:
        if not self.api.clients or not self.webhook_ids:
            return Verification.reject("missing_config")
        fields = {key: request.header(header) for key, header in HEADERS.items()}
        if not all(fields.values()):
            return Verification.reject("missing_headers")
        moment = parse_time(fields["transmission_time"])
        if moment is None or abs(request.now - moment) > self.leeway_s:
            return Verification.reject("timestamp_out_of_tolerance")
        try:
            if not isinstance(json.loads(request.body), dict):
                return Verification.reject("invalid_json")
        except ValueError:
            return Verification.reject("invalid_json")
        verdict = "FAILURE"
        try:
            for webhook_id in self.webhook_ids:
                verdict = await self.api.verify({**fields, "webhook_id": webhook_id}, request.body)
                if verdict == "SUCCESS":
                    return Verification.accept()
        except RemoteError as exc:
            return Verification.reject("oauth_failed" if str(exc) == "oauth_failed" else "verify_exception")
        return Verification.reject("invalid_signature" if verdict == "FAILURE" else "verify_http_failed")

    async def close(self) -> None:
        await self.api.close()

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {
            "private_key": SIM_PRIVATE_KEY.read(settings),
            "webhook_id": WEBHOOK_ID.newest(settings),
            "cert_url": SIM_CERT_URL.read(settings),
        }

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        if not credentials.get("private_key"):
            raise ValueError("set TENRUSL_PAYPAL_SIM_PRIVATE_KEY to sign PayPal transmissions")
        transmission_id = str(uuid.uuid1())
        time_ = datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = signed_message(transmission_id, time_, credentials["webhook_id"], body)
        headers = {
            "Content-Type": "application/json",
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": time_,
            "PAYPAL-TRANSMISSION-SIG": base64.b64encode(
                rsa_sign(credentials["private_key"], message, "sha256")
            ).decode(),
            "PAYPAL-CERT-URL": credentials["cert_url"],
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        }
        return Delivery(body, headers)

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
        capture = hex_id(ctx.rng, 17).upper()
        value = major(ctx)
        doc = {
            "id": f"WH-{hex_id(ctx.rng, 17).upper()}-{hex_id(ctx.rng, 17).upper()}",
            "event_version": "1.0",
            "create_time": iso(ctx.now),
            "resource_type": "capture",
            "resource_version": "2.0",
            "event_type": "PAYMENT.CAPTURE.COMPLETED",
            "summary": f"Payment completed for {value} {ctx.currency}",
            "resource": {
                "id": capture,
                "status": "COMPLETED",
                "amount": {"currency_code": ctx.currency, "value": value},
                "final_capture": True,
                "custom_id": ctx.ref,
                "invoice_id": ctx.ref,
                "seller_protection": {"status": "ELIGIBLE"},
                "create_time": iso(ctx.now),
                "update_time": iso(ctx.now),
            },
            "links": [
                {
                    "href": f"https://api.sandbox.paypal.com/v2/payments/captures/{capture}",
                    "rel": "self",
                    "method": "GET",
                }
            ],
        }
        return Payload(dump(doc), "PAYMENT.CAPTURE.COMPLETED")


PROVIDER = PaypalProvider
