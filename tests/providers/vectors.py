"""Known-answer deliveries for every provider, built from each provider's documented algorithm.

Nothing here calls the receiver's signing code: signatures are computed with hashlib, hmac and
cryptography directly, so a test that posts them checks our verifier against the documented
scheme, not against itself.

Each case has three keys: ``keys[0]`` and ``keys[1]`` are configured (rotation, "old,new") and
``keys[2]`` is a wrong key. What a key is depends on the scheme: a shared secret, an RSA or EC
key pair, or (PayPal) a webhook id plus PayPal's signing key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
PATH = "/api/v1/webhooks/{name}"


@cache
def rsa_key(index: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_key(index: int) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def private_pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def public_pem(key: Any) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def iso_utc(now: float) -> str:
    return datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()

    def b64url(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes(48, "big")).rstrip(b"=").decode()

    return {"kty": "EC", "crv": "P-384", "kid": kid, "x": b64url(numbers.x), "y": b64url(numbers.y)}


@dataclass
class Signed:
    body: bytes
    headers: dict[str, str]

    def without(self, header: str) -> Signed:
        return Signed(self.body, {k: v for k, v in self.headers.items() if k.lower() != header.lower()})


@dataclass
class Context:
    """Fake third-party servers the environment must point at (PayPal API, Amazon JWKS)."""

    paypal_url: str = ""
    jwks_url: str = ""
    jwks_keys: list[dict[str, str]] = field(default_factory=list)


class Case:
    name: str
    keys: tuple[Any, Any, Any]
    has_timestamp = False
    body_protected = True  # False for static-token schemes (Xendit)
    signature_header: str | None = None  # None: the signature travels in the body
    payload: dict[str, Any]

    def env(self, keys: list[Any], ctx: Context) -> dict[str, str]:
        raise NotImplementedError

    def deliver(self, key: Any, now: float) -> Signed:
        raise NotImplementedError

    def unsigned(self, signed: Signed) -> Signed:
        assert self.signature_header
        return signed.without(self.signature_header)

    def tamper(self, body: bytes) -> bytes:
        """One byte changed inside a signed value (the amount)."""
        assert b"10000" in body
        return body.replace(b"10000", b"90000", 1)

    def unsigned_body(self) -> bytes:
        return json.dumps(self.payload).encode()


class HexHmacCase(Case):
    """Schemes that put hex HMAC-SHA256(secret, raw body) in one header."""

    env_name: str

    def env(self, keys: list[Any], ctx: Context) -> dict[str, str]:
        return {self.env_name: ",".join(keys)}

    def deliver(self, key: Any, now: float) -> Signed:
        body = self.unsigned_body()
        assert self.signature_header
        return Signed(body, {"Content-Type": JSON_TYPE, self.signature_header: hmac_hex(key, body)})


class Mock(HexHmacCase):
    name, env_name, signature_header = "mock", "TENRUSL_MOCK_SECRET", "X-Mock-Signature"
    keys = ("mock-old", "mock-new", "mock-wrong")
    payload = {
        "id": "evt_mock_1",
        "type": "payment.paid",
        "status": "paid",
        "reference": "sim_mock_1",
        "amount": 10000,
    }


class LemonSqueezy(HexHmacCase):
    name, env_name, signature_header = "lemonsqueezy", "TENRUSL_LS_WEBHOOK_SECRET", "X-Signature"
    keys = ("ls-old-secret", "ls-new-secret", "ls-wrong-secret")
    payload = {
        "meta": {"event_name": "order_created", "custom_data": {"provider_ref": "sim_ls_1"}},
        "data": {
            "type": "orders",
            "id": "1",
            "attributes": {"status": "paid", "total": 10000, "updated_at": "2024-01-01T00:00:00.000000Z"},
        },
    }


class Tripay(HexHmacCase):
    name, env_name, signature_header = "tripay", "TENRUSL_TRIPAY_PRIVATE_KEY", "X-Callback-Signature"
    keys = ("tripay-old", "tripay-new", "tripay-wrong")
    payload = {
        "reference": "T0001000000000000006",
        "merchant_ref": "sim_tripay_1",
        "payment_method": "BRIVA",
        "total_amount": 10000,
        "status": "PAID",
        "paid_at": 1608133017,
    }

    def deliver(self, key: Any, now: float) -> Signed:
        signed = super().deliver(key, now)
        signed.headers["X-Callback-Event"] = "payment_status"
        return signed


class Oy(HexHmacCase):
    name, env_name, signature_header = "oy", "TENRUSL_OY_CALLBACK_SECRET", "X-OY-Signature"
    keys = ("oy-old", "oy-new", "oy-wrong")
    payload = {
        "trx_id": "ABC-456-DEF-789",
        "partner_trx_id": "sim_oy_1",
        "amount": 10000,
        "status": {"code": "000", "message": "Success"},
    }


class Payoneer(HexHmacCase):
    name, env_name, signature_header = "payoneer", "TENRUSL_PAYONEER_SHARED_SECRET", "X-Payoneer-Signature"
    keys = ("payoneer-old", "payoneer-new", "payoneer-wrong")
    payload = {"id": "pyn_evt_1", "event": "payment.completed", "status": "completed", "amount": 10000}


class Xendit(Case):
    name, signature_header, body_protected = "xendit", "x-callback-token", False
    keys = ("xnd-old-token", "xnd-new-token", "xnd-wrong-token")
    payload = {
        "id": "579c8d61f23fa4ca35e52da4",
        "external_id": "sim_xendit_1",
        "status": "PAID",
        "amount": 10000,
    }

    def env(self, keys: list[Any], ctx: Context) -> dict[str, str]:
        return {"TENRUSL_XENDIT_CALLBACK_TOKEN": ",".join(keys)}

    def deliver(self, key: Any, now: float) -> Signed:
        return Signed(self.unsigned_body(), {"Content-Type": JSON_TYPE, "x-callback-token": key})


class Stripe(Case):
    name, signature_header, has_timestamp = "stripe", "Stripe-Signature", True
    keys = ("whsec_old", "whsec_new", "whsec_wrong")
    payload = {
        "id": "evt_1",
        "type": "payment_intent.succeeded",
        "data": {"object": {"id": "pi_1", "amount": 10000, "metadata": {"provider_ref": "sim_stripe_1"}}},
    }

    def env(self, keys: list[Any], ctx: Context) -> dict[str, str]:
        return {"TENRUSL_STRIPE_WEBHOOK_SECRET": ",".join(keys)}

    def deliver(self, key: Any, now: float) -> Signed:
        body, t = self.unsigned_body(), str(int(now))
        v1 = hmac_hex(key, f"{t}.".encode() + body)
        return Signed(body, {"Content-Type": JSON_TYPE, "Stripe-Signature": f"t={t},v1={v1}"})


class Paddle(Case):
    name, signature_header, has_timestamp = "paddle", "Paddle-Signature", True
    keys = ("pdl_ntfset_old", "pdl_ntfset_new", "pdl_ntfset_wrong")
    payload = {
        "event_id": "evt_01h8",
        "event_type": "transaction.completed",
        "data": {"id": "txn_01h8", "status": "completed", "custom_data": {"provider_ref": "sim_paddle_1"}},
        "details": {"totals": {"total": "10000"}},
    }

    def env(self, keys: list[Any], ctx: Context) -> dict[str, str]:
        return {"TENRUSL_PADDLE_SIGNING_SECRET": ",".join(keys)}

    def deliver(self, key: Any, now: float) -> Signed:
        body, ts = self.unsigned_body(), str(int(now))
        h1 = hmac_hex(key, f"{ts}:".encode() + body)
        return Signed(body, {"Content-Type": JSON_TYPE, "Paddle-Signature": f"ts={ts}; h1={h1}"})


class Airwallex(Case):
    name, signature_header, has_timestamp = "airwallex", "x-signature", True
    keys = ("awx-old", "awx-new", "awx-wrong")
    payload = {
        "id": "evt_awx_1",
        "name": "payment_intent.succeeded",
        "data": {"object": {"id": "int_1", "merchant_order_id": "sim_awx_1", "amount": 10000}},
    }

    def env(self, keys: list[Any], ctx: Context) -> dict[str, str]:
        return {"TENRUSL_AIRWALLEX_WEBHOOK_SECRET": ",".join(keys)}

    def deliver(self, key: Any, now: float) -> Signed:
        body, ts = self.unsigned_body(), str(int(now * 1000))  # milliseconds
        return Signed(
            body,
            {"Content-Type": JSON_TYPE, "x-timestamp": ts, "x-signature": hmac_hex(key, ts.encode() + body)},
        )


class Midtrans(Case):
    name = "midtrans"
    keys = ("SB-Mid-server-old", "SB-Mid-server-new", "SB-Mid-server-wrong")
    payload = {
        "transaction_id": "a1b2c3",
        "order_id": "sim_midtrans_1",
        "status_code": "200",
        "gross_amount": "10000.00",
        "transaction_status": "settlement",
        "fraud_status": "accept",
    }

    def env(self, keys: list[Any], ctx: Context) -> dict[str, str]:
        return {"TENRUSL_MIDTRANS_SERVER_KEY": ",".join(keys)}

    def deliver(self, key: Any, now: float) -> Signed:
        p = self.payload
        text = p["order_id"] + p["status_code"] + p["gross_amount"] + key
        body = json.dumps({**p, "signature_key": hashlib.sha512(text.encode()).hexdigest()}).encode()
        return Signed(body, {"Content-Type": JSON_TYPE})

    def unsigned(self, signed: Signed) -> Signed:
        return Signed(json.dumps(self.payload).encode(), signed.headers)


class Skrill(Case):
    name = "skrill"
    keys = ("oldword", "newword", "wrongword")
    fields = {
        "pay_to_email": "merchant@example.com",
        "merchant_id": "12345",
        "transaction_id": "sim_skrill_1",
        "mb_transaction_id": "987654321",
        "mb_amount": "10000.00",
        "mb_currency": "EUR",
        "status": "2",
    }

    def env(self, keys: list[Any], ctx: Context) -> dict[str, str]:
        return {"TENRUSL_SKRILL_MD5_SECRET": ",".join(keys)}

    def deliver(self, key: Any, now: float) -> Signed:
        f = self.fields
        word = hashlib.md5(key.encode()).hexdigest().upper()
        base = f["merchant_id"] + f["transaction_id"] + word + f["mb_amount"] + f["mb_currency"] + f["status"]
        md5sig = hashlib.md5(base.encode()).hexdigest().upper()
        return Signed(urlencode({**f, "md5sig": md5sig}).encode(), {"Content-Type": FORM_TYPE})

    def unsigned(self, signed: Signed) -> Signed:
        return Signed(urlencode(self.fields).encode(), signed.headers)

    def unsigned_body(self) -> bytes:
        return urlencode(self.fields).encode()


class Doku(Case):
    name, signature_header, has_timestamp = "doku", "Signature", True
    keys = ("SK-doku-old", "SK-doku-new", "SK-doku-wrong")
    payload = {
        "order": {"invoice_number": "sim_doku_1", "amount": 10000},
        "transaction": {"status": "SUCCESS", "date": "2024-01-01T00:00:00Z"},
        "service": {"id": "VIRTUAL_ACCOUNT"},
    }

    def env(self, keys: list[Any], ctx: Context) -> dict[str, str]:
        return {"TENRUSL_DOKU_SECRET_KEY": ",".join(keys), "TENRUSL_DOKU_CLIENT_ID": "BRN-0001"}

    def deliver(self, key: Any, now: float) -> Signed:
        body, ts, request_id = self.unsigned_body(), iso_utc(now), "req-doku-1"
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        components = (
            f"Client-Id:BRN-0001\nRequest-Id:{request_id}\nRequest-Timestamp:{ts}\n"
            f"Request-Target:{PATH.format(name='doku')}\nDigest:{digest}"
        )
        mac = hmac.new(key.encode(), components.encode(), hashlib.sha256).digest()
        headers = {
            "Content-Type": JSON_TYPE,
            "Client-Id": "BRN-0001",
            "Request-Id": request_id,
            "Request-Timestamp": ts,
            "Signature": "HMACSHA256=" + base64.b64encode(mac).decode(),
        }
        return Signed(body, headers)


class Dana(Case):
    """SNAP: the body is sent pretty-printed, the signature covers its minified form."""

    name, signature_header, has_timestamp = "dana", "X-SIGNATURE", True
    keys = (0, 1, 2)  # indexes into the RSA key pool
    payload = {
        "originalPartnerReferenceNo": "sim_dana_1",
        "originalReferenceNo": "2024010100000001",
        "amount": {"value": "10000.00", "currency": "IDR"},
        "latestTransactionStatus": "00",
        "transactionStatusDesc": "Success",
    }

    def env(self, keys: list[Any], ctx: Context) -> dict[str, str]:
        return {
            "TENRUSL_DANA_PUBLIC_KEY": "\n".join(public_pem(rsa_key(k)) for k in keys),
            "TENRUSL_DANA_SIM_PRIVATE_KEY": private_pem(rsa_key(keys[0])),
        }

    def deliver(self, key: Any, now: float) -> Signed:
        body = json.dumps(self.payload, indent=2).encode()
        minified = json.dumps(self.payload, separators=(",", ":")).encode()
        ts = datetime.fromtimestamp(int(now), timezone(timedelta(hours=7))).isoformat()
        text = f"POST:{PATH.format(name='dana')}:{hashlib.sha256(minified).hexdigest()}:{ts}"
        signature = rsa_key(key).sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
        headers = {
            "Content-Type": JSON_TYPE,
            "X-TIMESTAMP": ts,
            "X-SIGNATURE": base64.b64encode(signature).decode(),
            "X-PARTNER-ID": "partner",
            "X-EXTERNAL-ID": "ext-1",
        }
        return Signed(body, headers)


class Paypal(Case):
    """Keys are (webhook id, index of PayPal's RSA key); the fake API trusts key 10 only."""

    name, signature_header, has_timestamp = "paypal", "PAYPAL-TRANSMISSION-SIG", True
    keys = (("WH-OLD", 10), ("WH-NEW", 10), ("WH-OLD", 11))
    payload = {
        "id": "WH-2WR32451HC0233532-67976317FL4543714",
        "event_type": "PAYMENT.CAPTURE.COMPLETED",
        "resource": {"id": "42311647XV020574X", "status": "COMPLETED", "custom_id": "sim_paypal_1"},
        "amount": {"value": "10000.00"},
    }

    def env(self, keys: list[Any], ctx: Context) -> dict[str, str]:
        return {
            "TENRUSL_PAYPAL_CLIENT_ID": "client-id",
            "TENRUSL_PAYPAL_CLIENT_SECRET": "client-secret",
            "TENRUSL_PAYPAL_WEBHOOK_ID": ",".join(k[0] for k in keys),
            "TENRUSL_PAYPAL_API_BASE": ctx.paypal_url,
            "TENRUSL_PAYPAL_SIM_PRIVATE_KEY": private_pem(rsa_key(10)),
        }

    def deliver(self, key: Any, now: float) -> Signed:
        webhook_id, index = key
        body, tid, t = self.unsigned_body(), str(uuid.uuid4()), iso_utc(now)
        message = f"{tid}|{t}|{webhook_id}|{zlib.crc32(body)}".encode()
        signature = rsa_key(index).sign(message, padding.PKCS1v15(), hashes.SHA256())
        headers = {
            "Content-Type": JSON_TYPE,
            "PAYPAL-TRANSMISSION-ID": tid,
            "PAYPAL-TRANSMISSION-TIME": t,
            "PAYPAL-TRANSMISSION-SIG": base64.b64encode(signature).decode(),
            "PAYPAL-CERT-URL": "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        }
        return Signed(body, headers)


class AmazonBwp(Case):
    """Keys are (EC key index, kid); the wrong key signs under a known kid."""

    name, signature_header = "amazon_bwp", "x-amzn-signature"
    keys = ((0, "kid-old"), (1, "kid-new"), (2, "kid-old"))
    payload = {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "ORDER_COMPLETED",
        "source": "aws.partner/buywithprime",
        "detail": {"orderId": "order-1", "externalId": "sim_bwp_1", "status": "COMPLETED", "total": 10000},
    }

    def env(self, keys: list[Any], ctx: Context) -> dict[str, str]:
        ctx.jwks_keys[:] = [jwk(ec_key(i), kid) for i, kid in keys]
        return {
            "TENRUSL_AMZN_BWP_JWKS_URL": ctx.jwks_url,
            "TENRUSL_AMZN_BWP_SIM_PRIVATE_KEY": private_pem(ec_key(keys[0][0])),
            "TENRUSL_AMZN_BWP_SIM_KID": keys[0][1],
        }

    def deliver(self, key: Any, now: float) -> Signed:
        index, kid = key
        body = self.unsigned_body()
        signature = ec_key(index).sign(body, ec.ECDSA(hashes.SHA384()))
        headers = {
            "Content-Type": JSON_TYPE,
            "x-amzn-signature": base64.b64encode(signature).decode(),
            "x-amzn-kid": kid,
        }
        return Signed(body, headers)


CASES: dict[str, Case] = {
    case.name: case
    for case in (
        Mock(),
        Xendit(),
        Midtrans(),
        Stripe(),
        Paypal(),
        Paddle(),
        LemonSqueezy(),
        Airwallex(),
        Tripay(),
        Doku(),
        Dana(),
        Oy(),
        Payoneer(),
        Skrill(),
        AmazonBwp(),
    )
}
