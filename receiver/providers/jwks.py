"""A JWKS cache for EC P-384 keys (Amazon Buy with Prime), keyed by ``kid``.

Keys are kept for ``ttl_s`` (24 h by default). An unknown ``kid`` triggers a refetch (the
provider rotated its keys), but at most once per ``refetch_floor_s``: otherwise anyone could make
the receiver fetch the JWKS on every request by sending random kids. When a fetch fails the keys
already known stay in use.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from receiver.providers.crypto import ec_p384_from_jwk
from receiver.providers.remote import RemoteError, SessionHolder, request_json

FETCH_TIMEOUT_S = 3.0


class JwksCache(SessionHolder):
    def __init__(self, url: str, *, ttl_s: float = 86400, refetch_floor_s: float = 60) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self.refetch_floor_s = refetch_floor_s
        self.keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self.fetched_at: float | None = None  # last successful fetch (monotonic)
        self.attempted_at: float | None = None  # last attempt, successful or not
        self.fetches = 0
        self._lock: asyncio.Lock | None = None

    def _needs_fetch(self, kid: str, now: float) -> bool:
        if self.fetched_at is None or now - self.fetched_at >= self.ttl_s:
            return self.attempted_at is None or now - self.attempted_at >= min(
                self.refetch_floor_s, self.ttl_s
            )
        if kid in self.keys:
            return False
        return self.attempted_at is None or now - self.attempted_at >= self.refetch_floor_s

    async def key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        self._lock = self._lock or asyncio.Lock()
        if self._needs_fetch(kid, time.monotonic()):
            async with self._lock:
                if self._needs_fetch(kid, time.monotonic()):
                    await self._fetch()
        elif kid not in self.keys and self._lock.locked():
            # Another request's fetch is under way: wait for its keys rather than reject now.
            async with self._lock:
                pass
        return self.keys.get(kid)

    async def _fetch(self) -> None:
        self.attempted_at = time.monotonic()
        self.fetches += 1
        try:
            status, data = await request_json(self.http(), "GET", self.url, timeout_s=FETCH_TIMEOUT_S)
        except RemoteError:
            return
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            return
        keys: dict[str, Any] = {}
        for jwk in data["keys"]:
            if isinstance(jwk, dict) and isinstance(jwk.get("kid"), str):
                key = ec_p384_from_jwk(jwk)
                if key is not None:
                    keys[jwk["kid"]] = key
        self.keys = keys
        self.fetched_at = time.monotonic()
