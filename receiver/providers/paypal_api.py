"""PayPal REST client for webhook verification: OAuth client credentials and the verify call.

``POST {base}/v1/oauth2/token`` (HTTP Basic with the client id and secret,
``grant_type=client_credentials``) gives a bearer token, cached until ``expires_in`` minus a
buffer of 10 % (between 60 and 600 s). ``POST {base}/v1/notifications/verify-webhook-signature``
answers ``verification_status`` SUCCESS or FAILURE; a 401/403 there drops the cached token and
the call is retried once with a new one. The event is embedded as the exact bytes received, so
PayPal checks the CRC32 of what it sent (a re-serialised event would not match).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

from receiver.providers.remote import RemoteError, SessionHolder, request_json

TOKEN_TIMEOUT_S = 3.0
VERIFY_TIMEOUT_S = 5.0


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def token_ttl(expires_in: int) -> float:
    buffer = min(max(expires_in // 10, 60), 600)
    return max(expires_in - buffer, 60)


class PaypalApi(SessionHolder):
    def __init__(self, base_url: str, clients: list[tuple[str, str]]) -> None:
        self.base_url = base_url.rstrip("/")
        self.clients = clients
        self._token: tuple[str, float] | None = None  # (token, monotonic expiry)
        self._lock: asyncio.Lock | None = None

    async def token(self) -> str:
        """A cached bearer token; tries each configured client pair (rotation) in turn."""
        if self._token and self._token[1] > time.monotonic():
            return self._token[0]
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            if self._token and self._token[1] > time.monotonic():
                return self._token[0]
            for client_id, secret in self.clients:
                status, data = await request_json(
                    self.http(),
                    "POST",
                    f"{self.base_url}/v1/oauth2/token",
                    timeout_s=TOKEN_TIMEOUT_S,
                    data={"grant_type": "client_credentials"},
                    headers={"Accept": "application/json", "Authorization": basic_auth(client_id, secret)},
                )
                if status == 200 and isinstance(data, dict) and isinstance(data.get("access_token"), str):
                    ttl = token_ttl(int(data.get("expires_in") or 0))
                    self._token = (data["access_token"], time.monotonic() + ttl)
                    return self._token[0]
            raise RemoteError("oauth_failed")

    def purge_token(self) -> None:
        self._token = None

    async def verify(self, fields: dict[str, str], raw_event: bytes) -> str:
        """PayPal's verdict (SUCCESS, FAILURE) or an ``http_<status>`` code."""
        body = json.dumps(fields)[:-1].encode() + b',"webhook_event":' + raw_event + b"}"
        for attempt in range(2):
            token = await self.token()
            status, data = await request_json(
                self.http(),
                "POST",
                f"{self.base_url}/v1/notifications/verify-webhook-signature",
                timeout_s=VERIFY_TIMEOUT_S,
                data=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            if status in (401, 403):
                self.purge_token()
                if attempt == 0:
                    continue
            if status != 200 or not isinstance(data, dict):
                return f"http_{status}"
            return str(data.get("verification_status", "")).upper()
        return "http_401"
