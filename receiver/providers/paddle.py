"""Paddle: Billing (JSON, ``Paddle-Signature``) and Classic (form, ``p_signature``).

Billing (developer.paddle.com, "Verify webhook signatures"): ``Paddle-Signature: ts=<unix
s>;h1=<hex>``, h1 = hex HMAC-SHA256(endpoint secret, ``"<ts>:<raw body>"``); several h1 values
appear while a secret rotates; ``ts`` is checked against the leeway (Paddle's SDK uses 5 s;
set ``TENRUSL_PADDLE_LEEWAY_SECONDS`` to tighten the 300 s default).

Classic (Paddle Classic "Verifying webhooks"): ``p_signature`` is base64 RSA-SHA1 (PKCS#1 v1.5)
over PHP ``serialize()`` of the other fields sorted by key. The form is parsed here from the raw
bytes, so the gate's form parsing cannot change what is verified.

Settings (``tenrusl/providers/paddle.py``): ``TENRUSL_PADDLE_SIGNING_SECRET`` (legacy
``PADDLE_SIGNING_SECRET``, comma-separated); ``TENRUSL_PADDLE_PUBLIC_KEY`` (legacy
``PADDLE_PUBLIC_KEY``: PEM blocks or bare base64, several for rotation);
``TENRUSL_PADDLE_SIM_PRIVATE_KEY`` (``sign`` of Classic forms only).
"""

from __future__ import annotations

import base64
import re
from urllib.parse import urlencode

from receiver.providers.base import (
    FORM,
    JSON,
    Delivery,
    Provider,
    SignedRequest,
    Verification,
    strip_prefix,
    within_window,
)
from receiver.providers.crypto import b64decode_strict, rsa_sign, rsa_verifies
from receiver.providers.formats import form_fields, php_serialize
from receiver.providers.samples import Context, Payload, dump, hex_id, iso
from tenrusl.providers.paddle import PUBLIC_KEY, SECRET, SIM_PRIVATE_KEY
from tenrusl.security import hmac_sha256_hex, matches_any
from tenrusl.settings import Settings


def classic_message(fields: list[tuple[str, str]]) -> bytes:
    """PHP-serialized fields (last value wins, as PHP), sorted by key, without p_signature."""
    flat = {k: v for k, v in fields if k != "p_signature"}
    return php_serialize(dict(sorted(flat.items()))).encode()


class PaddleProvider(Provider):
    name = "paddle"
    currency = "USD"
    content_kinds = frozenset({JSON, FORM})
    signature_headers = ("Paddle-Signature",)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = SECRET.read(settings)
        self.public_keys = PUBLIC_KEY.read(settings)

    async def verify(self, request: SignedRequest) -> Verification:
        header = request.header("Paddle-Signature")
        if header:
            return self._billing(header, request)
        if request.content_kind == FORM:
            return self._classic(request)
        return Verification.reject("missing_signature_header")

    def _billing(self, header: str, request: SignedRequest) -> Verification:
        if not self.secrets:
            return Verification.reject("missing_secret")
        pairs = [item.strip().partition("=") for item in re.split(r"[;,]", header)]
        values = [(k.strip().lower(), v.strip()) for k, _, v in pairs]
        ts = next((v for k, v in values if k == "ts"), "")
        candidates = [strip_prefix(v) for k, v in values if k.startswith("h") and v]
        if not ts.isdigit() or int(ts) <= 0:
            return Verification.reject("missing_or_invalid_ts")
        if not candidates:
            return Verification.reject("missing_hmac")
        if not within_window(int(ts), request.now, self.leeway_s):
            return Verification.reject("timestamp_out_of_tolerance")
        signed = ts.encode() + b":" + request.body
        if matches_any([hmac_sha256_hex(s, signed) for s in self.secrets], candidates, fold_case=True):
            return Verification.accept("ok_billing_hmac")
        return Verification.reject("invalid_signature")

    def _classic(self, request: SignedRequest) -> Verification:
        try:
            fields = form_fields(request.body)
        except ValueError:
            return Verification.reject("invalid_form_body")
        encoded = dict(fields).get("p_signature", "")
        if not encoded:
            return Verification.reject("missing_p_signature")
        if not self.public_keys:
            return Verification.reject("missing_public_key")
        signature = b64decode_strict(encoded)
        if signature is None:
            return Verification.reject("invalid_p_signature_base64")
        if rsa_verifies(self.public_keys, signature, classic_message(fields), "sha1"):
            return Verification.accept("ok_classic_rsa")
        return Verification.reject("invalid_signature")

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"secret": SECRET.newest(settings), "private_key": SIM_PRIVATE_KEY.read(settings)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        """A JSON body is signed as Billing; a form body as Classic (adds ``p_signature``)."""
        if body.lstrip().startswith(b"{"):
            ts = str(int(now))
            h1 = hmac_sha256_hex(credentials["secret"], ts.encode() + b":" + body)
            return Delivery(
                body, {"Content-Type": "application/json", "Paddle-Signature": f"ts={ts};h1={h1}"}
            )
        if not credentials.get("private_key"):
            raise ValueError("set TENRUSL_PADDLE_SIM_PRIVATE_KEY to sign Paddle Classic forms")
        fields = [(k, v) for k, v in form_fields(body) if k != "p_signature"]
        signature = rsa_sign(credentials["private_key"], classic_message(fields), "sha1")
        fields.append(("p_signature", base64.b64encode(signature).decode()))
        return Delivery(urlencode(fields).encode(), {"Content-Type": "application/x-www-form-urlencoded"})

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
        doc = {
            "event_id": f"evt_{hex_id(ctx.rng, 26)}",
            "event_type": "transaction.completed",
            "occurred_at": iso(ctx.now, millis=True),
            "notification_id": f"ntf_{hex_id(ctx.rng, 26)}",
            "data": {
                "id": f"txn_{hex_id(ctx.rng, 26)}",
                "status": "completed",
                "currency_code": ctx.currency,
                "origin": "web",
                "custom_data": {"provider_ref": ctx.ref},
                "details": {"totals": {"total": str(ctx.amount), "currency_code": ctx.currency}},
                "billed_at": iso(ctx.now),
            },
        }
        return Payload(dump(doc), "transaction.completed")


PROVIDER = PaddleProvider
