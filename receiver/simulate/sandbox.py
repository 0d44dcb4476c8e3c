"""A local stand-in for the two third-party APIs the receiver calls, for `tenrusl dev` and `simulate`.

PayPal verifies webhooks only through its REST API (OAuth token, then verify-webhook-signature)
and Amazon Buy with Prime publishes its keys as a JWKS, so neither can be exercised offline. The
sandbox owns the key pairs: it checks PayPal transmissions the way PayPal does (SHA256withRSA over
``id|time|webhook_id|crc32(body)``) and serves its P-384 public key as Amazon's JWKS.
``sandbox_env`` gives the settings that point the receiver at it and hand the simulator the
matching private keys (plus demo secrets for every other provider, see ``demo_secrets``).

Never for production: the private keys travel in environment variables.

Run it alone: ``python -m receiver.simulate.sandbox --port 8099 --env-file sandbox.env``, then
``set -a; . ./sandbox.env; set +a`` in the shells of the receiver and the simulator.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as dt
import json
import secrets
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from tenrusl.constants import PROVIDERS
from tenrusl.providers import provider_spec
from tenrusl.providers.config import Values

PAYPAL_PREFIX = "/paypal"
AMAZON_PREFIX = "/amazon"
EVENT_MARKER = b',"webhook_event":'


def demo_secrets() -> dict[str, str]:
    """A demo value for every secret a provider declares (tenrusl/providers/<name>.py), so each
    provider can be signed and verified in a dev environment; ``sandbox_env`` replaces the ones
    the sandbox must own (PayPal's client). A new provider's secrets get one with no change here.
    """
    demo: dict[str, str] = {}
    for name in PROVIDERS:
        for setting in provider_spec(name).variables:
            if isinstance(setting, Values) and setting.secret:
                variable = setting.names[0]
                demo[variable] = "dev-" + variable.removeprefix("TENRUSL_").lower().replace("_", "-")
    return demo


def _pem_private(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _pem_public(key: Any) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _b64url(number: int) -> str:
    return base64.urlsafe_b64encode(number.to_bytes(48, "big")).rstrip(b"=").decode()


@dataclass
class SandboxKeys:
    """Everything the sandbox and the simulator must agree on; generated fresh per sandbox."""

    paypal: rsa.RSAPrivateKey
    amazon: ec.EllipticCurvePrivateKey
    dana: rsa.RSAPrivateKey
    paddle: rsa.RSAPrivateKey
    paypal_client_id: str = field(default_factory=lambda: "sb-client-" + secrets.token_hex(6))
    paypal_client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    paypal_webhook_id: str = field(default_factory=lambda: "WH-SANDBOX-" + secrets.token_hex(8).upper())
    amazon_kid: str = field(default_factory=lambda: "sandbox-" + secrets.token_hex(4))

    @classmethod
    def generate(cls) -> SandboxKeys:
        def rsa_key() -> rsa.RSAPrivateKey:
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)

        return cls(rsa_key(), ec.generate_private_key(ec.SECP384R1()), rsa_key(), rsa_key())

    def jwks(self) -> dict[str, Any]:
        numbers = self.amazon.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-384",
            "kid": self.amazon_kid,
            "use": "sig",
            "alg": "ES384",
            "x": _b64url(numbers.x),
            "y": _b64url(numbers.y),
        }
        return {"keys": [jwk]}

    def paypal_certificate(self) -> bytes:
        """A self-signed certificate for the PayPal key, served where PAYPAL-CERT-URL points."""
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "messageverificationcerts.sandbox")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.paypal.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(self.paypal, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)


def paypal_message(fields: Mapping[str, Any], raw_event: bytes) -> bytes:
    parts = (
        fields["transmission_id"],
        fields["transmission_time"],
        fields["webhook_id"],
        zlib.crc32(raw_event),
    )
    return "|".join(str(p) for p in parts).encode()


def raw_event_bytes(body: bytes, document: Mapping[str, Any]) -> bytes:
    """The event exactly as the receiver embedded it; a compact re-serialisation otherwise.

    PayPal computes the CRC over the bytes it sent; a client that re-encodes the event would not
    match, which is why the receiver embeds the raw bytes (see ``receiver/providers/paypal_api.py``).
    """
    at = body.rfind(EVENT_MARKER)
    if at != -1 and body.rstrip().endswith(b"}"):
        return body[at + len(EVENT_MARKER) : body.rstrip().rfind(b"}")]
    return json.dumps(document.get("webhook_event"), separators=(",", ":")).encode()


def paypal_verdict(keys: SandboxKeys, body: bytes) -> str:
    """SUCCESS when the transmission was signed by the sandbox's key for the sandbox's webhook."""
    try:
        document = json.loads(body)
    except ValueError:
        return "FAILURE"
    required = ("transmission_id", "transmission_time", "transmission_sig", "webhook_id", "auth_algo")
    if not isinstance(document, dict) or not all(isinstance(document.get(k), str) for k in required):
        return "FAILURE"
    if document["webhook_id"] != keys.paypal_webhook_id or document["auth_algo"] != "SHA256withRSA":
        return "FAILURE"
    try:
        signature = base64.b64decode(document["transmission_sig"], validate=True)
        keys.paypal.public_key().verify(
            signature,
            paypal_message(document, raw_event_bytes(body, document)),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (binascii.Error, ValueError, InvalidSignature):
        return "FAILURE"
    return "SUCCESS"


def sandbox_app(keys: SandboxKeys) -> web.Application:
    """The fake APIs, as an application to run alone or mount with ``add_subapp``."""
    app = web.Application()
    tokens: set[str] = set()

    async def oauth_token(request: web.Request) -> web.Response:
        expected = aiohttp_basic(keys.paypal_client_id, keys.paypal_client_secret)
        form = await request.post()
        if request.headers.get("Authorization") != expected or form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "invalid_client"}, status=401)
        token = "A21AA" + secrets.token_urlsafe(24)
        tokens.add(token)
        return web.json_response(
            {
                "scope": "https://uri.paypal.com/services/applications/webhooks",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-SANDBOX",
                "expires_in": 32400,
                "nonce": secrets.token_hex(8),
            }
        )

    async def verify(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in tokens:
            return web.json_response({"name": "AUTHENTICATION_FAILURE"}, status=401)
        return web.json_response({"verification_status": paypal_verdict(keys, await request.read())})

    async def certificate(_: web.Request) -> web.Response:
        return web.Response(body=keys.paypal_certificate(), content_type="application/x-pem-file")

    async def jwks(_: web.Request) -> web.Response:
        return web.json_response(keys.jwks())

    app.router.add_post(f"{PAYPAL_PREFIX}/v1/oauth2/token", oauth_token)
    app.router.add_post(f"{PAYPAL_PREFIX}/v1/notifications/verify-webhook-signature", verify)
    app.router.add_get(f"{PAYPAL_PREFIX}/certs/sandbox.pem", certificate)
    app.router.add_get(f"{AMAZON_PREFIX}/jwks.json", jwks)
    return app


def aiohttp_basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def sandbox_env(base_url: str, keys: SandboxKeys) -> dict[str, str]:
    """Settings that point the receiver at the sandbox and give the simulator the private keys.

    ``base_url`` is where ``sandbox_app`` is served (with any mount prefix). PEM values use
    ``\\n`` escapes so each fits on one line of an env file; the providers accept that form.
    """
    base = base_url.rstrip("/")

    def one_line(pem: str) -> str:
        return pem.strip().replace("\n", "\\n")

    return {
        "TENRUSL_PAYPAL_API_BASE": base + PAYPAL_PREFIX,
        "TENRUSL_PAYPAL_CLIENT_ID": keys.paypal_client_id,
        "TENRUSL_PAYPAL_CLIENT_SECRET": keys.paypal_client_secret,
        "TENRUSL_PAYPAL_WEBHOOK_ID": keys.paypal_webhook_id,
        "TENRUSL_PAYPAL_SIM_PRIVATE_KEY": one_line(_pem_private(keys.paypal)),
        "TENRUSL_PAYPAL_SIM_CERT_URL": base + PAYPAL_PREFIX + "/certs/sandbox.pem",
        "TENRUSL_AMZN_BWP_JWKS_URL": base + AMAZON_PREFIX + "/jwks.json",
        "TENRUSL_AMZN_BWP_SIM_PRIVATE_KEY": one_line(_pem_private(keys.amazon)),
        "TENRUSL_AMZN_BWP_SIM_KID": keys.amazon_kid,
        "TENRUSL_DANA_PUBLIC_KEY": one_line(_pem_public(keys.dana.public_key())),
        "TENRUSL_DANA_SIM_PRIVATE_KEY": one_line(_pem_private(keys.dana)),
        "TENRUSL_PADDLE_PUBLIC_KEY": one_line(_pem_public(keys.paddle.public_key())),
        "TENRUSL_PADDLE_SIM_PRIVATE_KEY": one_line(_pem_private(keys.paddle)),
    }


def dev_env(base_url: str, keys: SandboxKeys, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``sandbox_env`` plus a demo secret for every provider not already configured in ``environ``."""
    configured = environ or {}
    demo = {k: v for k, v in demo_secrets().items() if not configured.get(k)}
    return {**demo, **sandbox_env(base_url, keys)}


def write_env_file(path: Path, env: Mapping[str, str]) -> None:
    """``KEY='value'`` lines (owner-only: they hold private keys), for ``set -a; . file``."""
    lines = [f"{k}='{v}'" for k, v in sorted(env.items())]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m receiver.simulate.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--env-file", type=Path, default=Path("sandbox.env"))
    args = parser.parse_args(argv)
    keys = SandboxKeys.generate()
    write_env_file(args.env_file, dev_env(f"http://{args.host}:{args.port}", keys))
    print(f"sandbox on http://{args.host}:{args.port}; settings in {args.env_file}", flush=True)
    web.run_app(sandbox_app(keys), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
