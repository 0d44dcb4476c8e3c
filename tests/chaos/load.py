"""A signed webhook load generator that records every answer, for the chaos tests.

Workers send unique mock-provider events (``X-Mock-Signature: hex(HMAC-SHA256(secret, body))``,
computed from the documented scheme in tests/receiver/helpers.py, not by the receiver's code)
until stopped. Every delivery becomes one :class:`Answer`: its event id, the HTTP status, or
``None`` with the error when no complete answer arrived (refused, reset, timed out, a body cut
short). Only a complete 2xx counts as acknowledged: a reset is never mistaken for success.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.conftest import MOCK_SECRET
from tests.receiver.helpers import mock_delivery

WEBHOOK_PATH = "/api/v1/webhooks/mock"


@dataclass(frozen=True)
class Answer:
    event_id: str
    status: int | None  # None: no complete HTTP answer
    duplicate: bool | None  # data.result.duplicate of a 202
    error: str | None  # the exception class when status is None
    sent_at: float  # time.monotonic()
    done_at: float

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def event_payload(event_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": event_id, "type": "payment.succeeded", "status": "succeeded", **extra}


async def deliver(
    session: aiohttp.ClientSession, base_url: str, payload: dict[str, Any], secret: str = MOCK_SECRET
) -> Answer:
    """Send one signed delivery and wait for its whole answer."""
    body, headers = mock_delivery(payload, secret)
    sent = time.monotonic()
    try:
        async with session.post(base_url + WEBHOOK_PATH, data=body, headers=headers) as resp:
            raw = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return Answer(payload["id"], None, None, exc.__class__.__name__, sent, time.monotonic())
    duplicate = None
    if status == 202:
        duplicate = bool(json.loads(raw)["data"]["result"]["duplicate"])
    return Answer(payload["id"], status, duplicate, None, sent, time.monotonic())


def session(concurrency: int, timeout_s: float = 20.0) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency, force_close=False),
        timeout=aiohttp.ClientTimeout(total=timeout_s),
    )


class SignedLoad:
    """``concurrency`` workers delivering ``<prefix>_<n>`` events to ``base_url`` until ``stop()``."""

    def __init__(self, base_url: str, *, prefix: str, concurrency: int = 24) -> None:
        self.base_url = base_url
        self.prefix = prefix
        self.concurrency = concurrency
        self.answers: list[Answer] = []
        self._numbers = itertools.count(1)
        self._stopping = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> SignedLoad:
        self._session = session(self.concurrency)
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop sending; in-flight deliveries finish (or time out) and are recorded."""
        self._stopping.set()
        if self._workers:
            await asyncio.gather(*self._workers)
            self._workers = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _work(self) -> None:
        assert self._session is not None
        while not self._stopping.is_set():
            event_id = f"{self.prefix}_{next(self._numbers):06d}"
            answer = await deliver(self._session, self.base_url, event_payload(event_id))
            self.answers.append(answer)
            if answer.status is None or answer.status >= 500:
                await asyncio.sleep(0.02)  # the receiver or its database is down: do not spin

    async def until(self, condition: Callable[[], bool], within: float, what: str) -> float:
        """Wait (load running) until ``condition()``; returns the monotonic time it became true."""
        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {within} s waiting for {what}; {self.summary()}")
            await asyncio.sleep(0.02)
        return time.monotonic()

    # -- what was answered --------------------------------------------------------------------------

    def count(self, status: int | None) -> int:
        return sum(1 for a in self.answers if a.status == status)

    def statuses(self, answers: Iterable[Answer] | None = None) -> Counter[int | None]:
        return Counter(a.status for a in (self.answers if answers is None else answers))

    def errors(self) -> Counter[str]:
        return Counter(a.error for a in self.answers if a.error)

    @property
    def sent(self) -> set[str]:
        return {a.event_id for a in self.answers}

    @property
    def acknowledged(self) -> set[str]:
        return {a.event_id for a in self.answers if a.acknowledged}

    def summary(self) -> str:
        return (
            f"{len(self.answers)} deliveries, statuses {dict(self.statuses())}, "
            f"transport errors {dict(self.errors())}"
        )
