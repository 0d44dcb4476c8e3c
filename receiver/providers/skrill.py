"""Skrill: form POST to the ``status_url`` with ``md5sig`` (and ``sha2sig`` when enabled).

Documented scheme (Skrill Quick Checkout guide, "MD5 signature"): ``md5sig`` is
UPPER(hex(MD5(merchant_id + transaction_id + UPPER(hex(MD5(secret word))) + mb_amount +
mb_currency + status))), fields exactly as posted; ``sha2sig`` is the same string with SHA-256.
When both are present both must match. The form is parsed here from the raw bytes.

Compatibility: the original signed ``mb_transaction_id`` in place of ``transaction_id`` when
both were posted. ``TENRUSL_SKRILL_SIGNATURE_MODE=legacy`` keeps that; default ``standard``.
``TENRUSL_SKRILL_MERCHANT_ID`` and ``TENRUSL_SKRILL_EMAIL`` (unused by the original) are checked
against ``merchant_id`` and ``pay_to_email`` when set.

Settings (``tenrusl/providers/skrill.py``): ``TENRUSL_SKRILL_MD5_SECRET`` (legacy
``SKRILL_MD5_SECRET``): the secret word, comma-separated for rotation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from urllib.parse import urlencode

from receiver.providers.base import FORM, Delivery, Provider, SignedRequest, Verification
from receiver.providers.formats import form_fields
from receiver.providers.samples import Context, Payload, digits, major
from tenrusl.providers.skrill import EMAIL, MERCHANT_ID, SECRET_WORD, SIGNATURE_MODE
from tenrusl.security import matches_any
from tenrusl.settings import Settings


def base_string(fields: Mapping[str, str], secret_word: str, *, legacy: bool = False) -> str | None:
    order = ("mb_transaction_id", "transaction_id") if legacy else ("transaction_id", "mb_transaction_id")
    txid = next((fields[k] for k in order if fields.get(k)), "")
    parts = [fields.get(k, "") for k in ("merchant_id", "mb_amount", "mb_currency", "status")]
    if not txid or not all(parts):
        return None
    word = hashlib.md5(secret_word.encode()).hexdigest().upper()
    return parts[0] + txid + word + parts[1] + parts[2] + parts[3]


class SkrillProvider(Provider):
    name = "skrill"
    currency = "EUR"
    content_kinds = frozenset({FORM})

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.secrets = SECRET_WORD.read(settings)
        self.legacy = SIGNATURE_MODE.read(settings) == "legacy"
        self.merchant_ids = MERCHANT_ID.read(settings)
        self.emails = EMAIL.read(settings)

    async def verify(self, request: SignedRequest) -> Verification:
        try:
            fields = dict(form_fields(request.body))
        except ValueError:
            return Verification.reject("invalid_form_body")
        md5sig, sha2sig = fields.get("md5sig", "").strip(), fields.get("sha2sig", "").strip()
        if not md5sig and not sha2sig:
            return Verification.reject("missing_signature")
        if not self.secrets:
            return Verification.reject("missing_secret_word")
        if self.merchant_ids and not matches_any(self.merchant_ids, [fields.get("merchant_id", "")]):
            return Verification.reject("merchant_mismatch")
        if self.emails and not matches_any(self.emails, [fields.get("pay_to_email", "")], fold_case=True):
            return Verification.reject("pay_to_email_mismatch")
        bases = [base_string(fields, secret, legacy=self.legacy) for secret in self.secrets]
        if None in bases:
            return Verification.reject("missing_fields")
        verdicts = []
        for base in bases:
            text = (base or "").encode()
            md5_ok = not md5sig or matches_any([hashlib.md5(text).hexdigest()], [md5sig], fold_case=True)
            sha_ok = not sha2sig or matches_any([hashlib.sha256(text).hexdigest()], [sha2sig], fold_case=True)
            verdicts.append(md5_ok and sha_ok)
        if any(verdicts):
            return Verification.accept()
        return Verification.reject("invalid_md5sig" if md5sig else "invalid_sha2sig")

    @classmethod
    def signing_credentials(cls, settings: Settings) -> dict[str, str]:
        return {"secret_word": SECRET_WORD.newest(settings)}

    @classmethod
    def sign(cls, body: bytes, credentials: dict[str, str], *, now: float, path: str) -> Delivery:
        """Appends ``md5sig`` and ``sha2sig`` to the form (it must hold the signed fields)."""
        fields = form_fields(body)
        base = base_string(dict(fields), credentials["secret_word"])
        if base is None:
            raise ValueError("the form lacks merchant_id, transaction_id, mb_amount, mb_currency or status")
        signed = [(k, v) for k, v in fields if k not in ("md5sig", "sha2sig")]
        signed += [
            ("md5sig", hashlib.md5(base.encode()).hexdigest().upper()),
            ("sha2sig", hashlib.sha256(base.encode()).hexdigest().upper()),
        ]
        return Delivery(urlencode(signed).encode(), {"Content-Type": "application/x-www-form-urlencoded"})

    @classmethod
    def sample(cls, ctx: Context) -> Payload:
        """A realistic notification of a successful payment, naming our payment ``ctx.ref``."""
        fields = [
            ("pay_to_email", "merchant@example.com"),
            ("pay_from_email", "buyer@example.com"),
            ("merchant_id", "12345678"),
            ("transaction_id", ctx.ref),
            ("mb_transaction_id", digits(ctx.rng, 10)),
            ("mb_amount", major(ctx)),
            ("mb_currency", ctx.currency),
            ("status", "2"),
            ("amount", major(ctx)),
            ("currency", ctx.currency),
            ("payment_type", "WLT"),
        ]
        return Payload(urlencode(fields).encode(), None, signed_field="mb_amount")


PROVIDER = SkrillProvider
