"""The sandbox's fake PayPal and Amazon APIs, directly and through the receiver's own clients."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest

from receiver.providers import provider_class
from receiver.providers.crypto import ec_p384_from_jwk
from receiver.providers.paypal_api import PaypalApi
from receiver.providers.remote import RemoteError
from receiver.simulate.sandbox import SandboxKeys, paypal_verdict, sandbox_env
from tenrusl.settings import Settings

EVENT = json.dumps({"id": "WH-1", "event_type": "PAYMENT.CAPTURE.COMPLETED"}, separators=(",", ":")).encode()


def paypal_headers(keys: SandboxKeys, body: bytes) -> dict[str, str]:
    settings = Settings.from_env(sandbox_env("http://sandbox.invalid", keys))
    cls = provider_class("paypal")
    return cls.sign(body, cls.signing_credentials(settings), now=time.time(), path="/x").headers


def verify_request(
    keys: SandboxKeys, body: bytes, headers: dict[str, str], webhook_id: str | None = None
) -> bytes:
    fields = {
        "auth_algo": headers["PAYPAL-AUTH-ALGO"],
        "cert_url": headers["PAYPAL-CERT-URL"],
        "transmission_id": headers["PAYPAL-TRANSMISSION-ID"],
        "transmission_sig": headers["PAYPAL-TRANSMISSION-SIG"],
        "transmission_time": headers["PAYPAL-TRANSMISSION-TIME"],
        "webhook_id": webhook_id or keys.paypal_webhook_id,
    }
    return json.dumps(fields)[:-1].encode() + b',"webhook_event":' + body + b"}"


def test_paypal_verdict_checks_signature_crc_and_webhook_id(sandbox_keys: SandboxKeys) -> None:
    headers = paypal_headers(sandbox_keys, EVENT)
    assert paypal_verdict(sandbox_keys, verify_request(sandbox_keys, EVENT, headers)) == "SUCCESS"
    other = EVENT.replace(b"WH-1", b"WH-2")
    assert paypal_verdict(sandbox_keys, verify_request(sandbox_keys, other, headers)) == "FAILURE"
    wrong_hook = verify_request(sandbox_keys, EVENT, headers, webhook_id="WH-OTHER")
    assert paypal_verdict(sandbox_keys, wrong_hook) == "FAILURE"
    assert paypal_verdict(sandbox_keys, b"not json") == "FAILURE"


async def test_paypal_api_client_talks_to_the_sandbox(sandbox_url: str, sandbox_keys: SandboxKeys) -> None:
    env = sandbox_env(sandbox_url, sandbox_keys)
    api = PaypalApi(
        env["TENRUSL_PAYPAL_API_BASE"], [(sandbox_keys.paypal_client_id, sandbox_keys.paypal_client_secret)]
    )
    headers = paypal_headers(sandbox_keys, EVENT)
    fields = {
        "auth_algo": headers["PAYPAL-AUTH-ALGO"],
        "cert_url": headers["PAYPAL-CERT-URL"],
        "transmission_id": headers["PAYPAL-TRANSMISSION-ID"],
        "transmission_sig": headers["PAYPAL-TRANSMISSION-SIG"],
        "transmission_time": headers["PAYPAL-TRANSMISSION-TIME"],
        "webhook_id": sandbox_keys.paypal_webhook_id,
    }
    try:
        assert await api.verify(fields, EVENT) == "SUCCESS"
        assert await api.verify(fields, EVENT.replace(b"WH-1", b"WH-9")) == "FAILURE"
        bad = PaypalApi(env["TENRUSL_PAYPAL_API_BASE"], [("nobody", "wrong")])
        try:
            with pytest.raises(RemoteError, match="oauth_failed"):
                await bad.token()
        finally:
            await bad.close()
    finally:
        await api.close()


async def test_jwks_and_certificate_are_served(sandbox_url: str, sandbox_keys: SandboxKeys) -> None:
    env: dict[str, Any] = sandbox_env(sandbox_url, sandbox_keys)
    async with aiohttp.ClientSession() as session:
        async with session.get(env["TENRUSL_AMZN_BWP_JWKS_URL"]) as resp:
            jwks = await resp.json()
        async with session.get(env["TENRUSL_PAYPAL_SIM_CERT_URL"]) as resp:
            assert (await resp.read()).startswith(b"-----BEGIN CERTIFICATE-----")
    (jwk,) = jwks["keys"]
    assert jwk["kid"] == env["TENRUSL_AMZN_BWP_SIM_KID"]
    key = ec_p384_from_jwk(jwk)
    assert key is not None
    assert key.public_numbers() == sandbox_keys.amazon.public_key().public_numbers()
