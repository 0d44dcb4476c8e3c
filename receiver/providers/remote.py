"""Outbound HTTP for the providers that verify through a third party (PayPal, Amazon JWKS).

One lazily created ``aiohttp.ClientSession`` per provider instance (closed in ``close()``),
short timeouts, and one retry after a short pause on connection errors, timeouts and 5xx, so a
provider's blip does not reject a genuine delivery and a dead server fails fast (the gate then
answers 401 and the provider redelivers later).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp


class RemoteError(Exception):
    """The remote service could not be reached or answered 5xx twice."""


class SessionHolder:
    """Mixin: a lazily created client session, closed with the provider."""

    _session: aiohttp.ClientSession | None = None

    def http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(headers={"User-Agent": "tenrusl-receiver"})
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


async def request_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    timeout_s: float,
    retries: int = 1,
    retry_delay_s: float = 0.2,
    **kwargs: Any,
) -> tuple[int, Any]:
    """``(status, decoded JSON or None)``; RemoteError when every attempt failed."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    for attempt in range(retries + 1):
        last = attempt == retries
        try:
            async with session.request(method, url, timeout=timeout, **kwargs) as response:
                if response.status >= 500 and not last:
                    await asyncio.sleep(retry_delay_s)
                    continue
                try:
                    data = await response.json(content_type=None)
                except ValueError:
                    data = None
                if response.status >= 500:
                    raise RemoteError(f"http_{response.status}")
                return response.status, data
        except (aiohttp.ClientError, TimeoutError) as exc:
            if last:
                raise RemoteError(exc.__class__.__name__) from None
            await asyncio.sleep(retry_delay_s)
    raise RemoteError("unreachable")  # pragma: no cover - the loop always returns or raises
