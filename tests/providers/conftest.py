"""Fakes of the two third-party APIs the receiver calls (PayPal, Amazon's JWKS), and a factory
for a live receiver configured for one provider.

The fake PayPal really checks the transmission signature: it rebuilds
``transmission_id|transmission_time|webhook_id|crc32(event bytes)`` and verifies it with the
public key of PayPal's (test) signing key, so a tampered body or a forged signature fails.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.providers.vectors import CASES, Case, Context, rsa_key

PAYPAL_CLIENT = ("client-id", "client-secret")
PAYPAL_SIGNING_KEY = 10  # index in the RSA key pool of "PayPal's" key
FAST_RATE = {"TENRUSL_RATE_WEBHOOKS_PER_SECOND": "10000", "TENRUSL_RATE_WEBHOOKS_PER_MINUTE": "100000"}


@dataclass
class FakePaypal:
    tokens: set[str] = field(default_factory=set)
    token_requests: int = 0
    verify_requests: int = 0
    fail_next_verify_with: int | None = None

    async def oauth(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        credentials = tuple(base64.b64decode(encoded or "").decode().split(":", 1))
        if (
            scheme != "Basic"
            or credentials != PAYPAL_CLIENT
            or form.get("grant_type") != "client_credentials"
        ):
            return web.json_response({"error": "invalid_client"}, status=401)
        token = f"A21AA-{self.token_requests}"
        self.tokens.add(token)
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": 32400})

    async def verify(self, request: web.Request) -> web.Response:
        self.verify_requests += 1
        if self.fail_next_verify_with:
            status, self.fail_next_verify_with = self.fail_next_verify_with, None
            self.tokens.clear()
            return web.json_response({"name": "AUTHENTICATION_FAILURE"}, status=status)
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.tokens:
            return web.json_response({"name": "AUTHENTICATION_FAILURE"}, status=401)
        raw = await request.read()
        # The event must arrive as the exact bytes PayPal sent: take them verbatim.
        marker = b',"webhook_event":'
        head, event = raw[: raw.index(marker)] + b"}", raw[raw.index(marker) + len(marker) : -1]
        fields = json.loads(head)
        json.loads(event)  # valid JSON, or this handler fails (500)
        message = (
            f"{fields['transmission_id']}|{fields['transmission_time']}|{fields['webhook_id']}|{zlib.crc32(event)}"
        ).encode()
        verdict = "FAILURE"
        if fields.get("auth_algo") == "SHA256withRSA":
            try:
                rsa_key(PAYPAL_SIGNING_KEY).public_key().verify(
                    base64.b64decode(fields["transmission_sig"]), message, padding.PKCS1v15(), hashes.SHA256()
                )
                verdict = "SUCCESS"
            except (InvalidSignature, ValueError):
                pass
        return web.json_response({"verification_status": verdict})


@dataclass
class FakeJwks:
    ctx: Context
    fetches: int = 0

    async def jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response({"keys": self.ctx.jwks_keys})


@dataclass
class ThirdParties:
    ctx: Context
    paypal: FakePaypal
    jwks: FakeJwks


@pytest.fixture
async def third_parties() -> AsyncIterator[ThirdParties]:
    ctx = Context()
    paypal, jwks = FakePaypal(), FakeJwks(ctx)
    app = web.Application()
    app.router.add_post("/v1/oauth2/token", paypal.oauth)
    app.router.add_post("/v1/notifications/verify-webhook-signature", paypal.verify)
    app.router.add_get("/jwks.json", jwks.jwks)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    ctx.paypal_url = str(server.make_url("")).rstrip("/")
    ctx.jwks_url = str(server.make_url("/jwks.json"))
    yield ThirdParties(ctx, paypal, jwks)
    await server.close()


ReceiverFactory = Callable[..., Any]


@pytest.fixture
def receiver_for(
    make_settings: Callable[..., Any], make_client: Callable[..., Any], third_parties: ThirdParties
) -> ReceiverFactory:
    """``await receiver_for(case, keys, **extra_env)``: a live receiver with that provider's keys."""

    async def factory(case: Case, keys: list[Any], **extra: str) -> TestClient:
        env = {**FAST_RATE, **case.env(keys, third_parties.ctx), **extra}
        return await make_client(make_settings(**env))

    return factory


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Any test asking for ``case`` runs once per provider (``timestamped_case``: per provider whose scheme has a timestamp)."""
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", list(CASES.values()), ids=list(CASES))
    if "timestamped_case" in metafunc.fixturenames:
        cases = [c for c in CASES.values() if c.has_timestamp]
        metafunc.parametrize("timestamped_case", cases, ids=[c.name for c in cases])
