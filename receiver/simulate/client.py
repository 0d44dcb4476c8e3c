"""Sending deliveries and judging the answers: the plan, tampering, classification, statistics.

Everything except ``send_all`` and ``create_payment`` is a pure function, tested on its own.
Like a real provider, ``send_all`` redelivers the same bytes after a 429 or 503, waiting what
the receiver's ``Retry-After`` asks (capped), a bounded number of times (``Redelivery``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TextIO
from urllib.parse import quote

import aiohttp

FRESH, DUPLICATE, TAMPERED = "fresh", "duplicate", "tampered"
OUTCOMES = ("accepted", "duplicate", "rejected", "rate_limited", "error")
OUTCOME_LABELS = {
    "rate_limited": "rate limited (429)",
    "rejected": "rejected (4xx)",
    "error": "errors (5xx/conn)",
}
REDELIVER_STATUSES = frozenset({429, 503})  # "not now": a provider sends the same event again later


@dataclass(frozen=True)
class Delivery:
    """One HTTP request to send."""

    kind: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Result:
    """The final answer to one delivery (after any redeliveries)."""

    kind: str
    status: int | None  # None: no HTTP answer (connection error, timeout)
    duplicate: bool
    latency_s: float  # of the final answer
    redeliveries: int = 0  # sends after the first, each after a 429 or 503
    waited_s: float = 0.0  # time spent waiting before those redeliveries


@dataclass(frozen=True)
class Redelivery:
    """How a provider answers a 429 or 503: send the same bytes again later, a bounded number of times.

    The wait is the answer's ``Retry-After`` (seconds or an HTTP date), or 1, 2, 4, ... s when it
    has none, never more than ``max_wait_s``. ``max_redeliveries=0`` sends each delivery once.
    """

    max_redeliveries: int = 5
    max_wait_s: float = 30.0

    def delay(self, retry_after: str | None, redelivery: int, now: float | None = None) -> float:
        """Seconds to wait before redelivery number ``redelivery`` (1-based)."""
        asked = parse_retry_after(retry_after, time.time() if now is None else now)
        fallback = float(2 ** min(redelivery - 1, 16))
        return max(0.0, min(self.max_wait_s, fallback if asked is None else asked))


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` in seconds from now: delta-seconds or an HTTP date (RFC 9110); None if absent/bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - datetime.fromtimestamp(now, UTC).timestamp())


def plan_counts(count: int, duplicate_rate: float, tamper_rate: float) -> tuple[int, int, int]:
    """(fresh, duplicate, tampered): exact numbers, so a run's expected outcome is known."""
    duplicates = round(count * duplicate_rate)
    tampered = round(count * tamper_rate)
    fresh = count - duplicates - tampered
    if fresh < 1:
        raise ValueError("--duplicate-rate plus --tamper-rate must leave at least one fresh delivery")
    return fresh, duplicates, tampered


def flip_char(char: str) -> str:
    """Another character of the same class, so the body keeps its shape (digits stay digits)."""
    if char.isdigit():
        return str((int(char) + 1) % 10)
    if char.islower():
        return chr((ord(char) - 97 + 1) % 26 + 97)
    return chr((ord(char) - 65 + 1) % 26 + 65)


def _value_span(body: bytes, name: str) -> tuple[int, int] | None:
    """Where the value of ``name`` sits in a JSON or form body (the raw bytes, not re-encoded)."""
    text = body.decode("latin-1")
    for marker, end_chars in ((f'"{name}":"', '"'), (f'"{name}":', ",}"), (f"{name}=", "&")):
        start = text.find(marker)
        if start == -1 or (marker.endswith("=") and start > 0 and text[start - 1] != "&"):
            continue
        start += len(marker)
        end = start
        while end < len(text) and text[end] not in end_chars:
            end += 1
        return start, end
    return None


def tamper(body: bytes, rng: random.Random, signed_field: str | None = None) -> bytes:
    """Flip one alphanumeric byte: inside ``signed_field``'s value when given, else anywhere."""
    span = _value_span(body, signed_field) if signed_field else None
    lo, hi = span if span else (0, len(body))
    positions = [i for i in range(lo, hi) if chr(body[i]).isascii() and chr(body[i]).isalnum()]
    if not positions:
        raise ValueError("nothing to tamper with in this body")
    i = rng.choice(positions)
    return body[:i] + flip_char(chr(body[i])).encode() + body[i + 1 :]


def tamper_header(headers: dict[str, str], name: str) -> dict[str, str]:
    """For token-only schemes (the body is not signed at all), a forged token is the tamper."""
    value = headers[name]
    return {**headers, name: value[:-1] + flip_char(value[-1]) if value[-1:].isalnum() else value + "x"}


def classify(status: int | None, duplicate: bool) -> str:
    if status is None or status >= 500:
        return "error"
    if 200 <= status < 300:
        return "duplicate" if duplicate else "accepted"
    if status == 429:
        return "rate_limited"
    return "rejected"


def percentile(values: Sequence[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Summary:
    provider: str
    planned: Counter[str] = field(default_factory=Counter)  # by kind
    outcomes: Counter[str] = field(default_factory=Counter)
    tampered: Counter[str] = field(default_factory=Counter)  # rejected_401/_other, unjudged, accepted
    latencies_ms: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    delayed: int = 0  # deliveries answered 429/503 at least once, then sent again
    redeliveries: int = 0  # all the sends after a 429/503
    waited_s: float = 0.0  # summed over deliveries
    gave_up: int = 0  # deliveries still answered 429/503 when the redeliveries ran out

    def add(self, result: Result) -> None:
        outcome = classify(result.status, result.duplicate)
        self.outcomes[outcome] += 1
        if result.redeliveries:
            self.delayed += 1
            self.redeliveries += result.redeliveries
            self.waited_s += result.waited_s
        if result.status in REDELIVER_STATUSES:
            self.gave_up += 1
        if result.status is not None:
            self.latencies_ms.append(result.latency_s * 1000)
        if result.kind == TAMPERED:
            if result.status == 401:
                self.tampered["rejected_401"] += 1
            elif outcome in ("accepted", "duplicate"):
                self.tampered["accepted"] += 1
            elif outcome == "rejected":
                self.tampered["rejected_other"] += 1
            else:  # 429 or 5xx: the signature was never judged
                self.tampered["unjudged"] += 1

    @property
    def ok(self) -> bool:
        """A tampered delivery accepted, a 5xx/connection error, or a delivery given up fails the run.

        A 429 or 503 that a redelivery got past is not a failure: it is how providers behave.
        """
        return self.tampered["accepted"] == 0 and self.outcomes["error"] == 0 and self.gave_up == 0


def render_summary(s: Summary) -> str:
    lines = [
        f"provider {s.provider}: {sum(s.planned.values())} deliveries "
        f"(fresh {s.planned[FRESH]}, duplicate {s.planned[DUPLICATE]}, tampered {s.planned[TAMPERED]})",
        "",
        f"  {'outcome':<22}{'count':>7}",
    ]
    for outcome in OUTCOMES:
        lines.append(f"  {OUTCOME_LABELS.get(outcome, outcome):<22}{s.outcomes[outcome]:>7}")
    lines.append("")
    if s.planned[TAMPERED]:
        lines.append(
            f"  tampered: {s.tampered['rejected_401']} rejected as expected (401), "
            f"{s.tampered['rejected_other']} rejected with another 4xx, "
            f"{s.tampered['unjudged']} not judged (429/5xx), "
            f"{s.tampered['accepted']} accepted unexpectedly"
        )
    lines.append(
        f"  redelivered after 429/503: {s.delayed} deliveries delayed "
        f"({s.redeliveries} redeliveries, {s.waited_s:.1f} s waited in all), {s.gave_up} gave up"
    )
    p50, p95, p99 = (percentile(s.latencies_ms, p) for p in (50, 95, 99))
    lines.append(f"  latency ms: p50 {p50:.1f}  p95 {p95:.1f}  p99 {p99:.1f}")
    lines.extend(f"  note: {note}" for note in s.notes)
    return "\n".join(lines)


def render_progress(done: int, total: int, width: int = 30) -> str:
    filled = width if total == 0 else width * done // total
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


class Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total, self.done, self.stream = total, 0, stream or sys.stderr
        self._drawn = 0.0

    def step(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.done == self.total or now - self._drawn >= 0.1:
            self._drawn = now
            end = "\n" if self.done == self.total else ""
            self.stream.write("\r" + render_progress(self.done, self.total) + end)
            self.stream.flush()


async def send_one(session: aiohttp.ClientSession, url: str, delivery: Delivery) -> tuple[Result, str | None]:
    """One HTTP request: the result and the answer's ``Retry-After`` header (None if absent)."""
    started = time.perf_counter()
    try:
        async with session.post(url, data=delivery.body, headers=delivery.headers) as resp:
            duplicate = False
            if resp.status == 202:
                with contextlib.suppress(ValueError, KeyError, TypeError, aiohttp.ContentTypeError):
                    duplicate = bool((await resp.json())["data"]["result"]["duplicate"])
            else:
                await resp.read()
            result = Result(delivery.kind, resp.status, duplicate, time.perf_counter() - started)
            return result, resp.headers.get("Retry-After")
    except (aiohttp.ClientError, TimeoutError):
        return Result(delivery.kind, None, False, time.perf_counter() - started), None


async def send_all(
    session: aiohttp.ClientSession,
    url: str,
    deliveries: Sequence[Delivery],
    concurrency: int,
    on_result: Callable[[Result], None],
    redelivery: Redelivery | None = None,
) -> None:
    """Send with ``concurrency`` workers, each holding one connection; redeliver after a 429/503.

    A delivery waiting out a ``Retry-After`` holds no worker: a timer puts it back at the end of
    the queue, so the others go on meanwhile. ``on_result`` gets one final result per delivery.
    """
    policy = redelivery or Redelivery()
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Delivery, int, float]] = asyncio.Queue()  # delivery, redeliveries, waited
    for delivery in deliveries:
        queue.put_nowait((delivery, 0, 0.0))
    unfinished = len(deliveries)
    finished = asyncio.Event()
    if not unfinished:
        return

    async def worker() -> None:
        nonlocal unfinished
        while True:
            delivery, redeliveries, waited = await queue.get()
            result, retry_after = await send_one(session, url, delivery)
            if result.status in REDELIVER_STATUSES and redeliveries < policy.max_redeliveries:
                wait = policy.delay(retry_after, redeliveries + 1)
                loop.call_later(wait, queue.put_nowait, (delivery, redeliveries + 1, waited + wait))
                continue
            on_result(
                Result(result.kind, result.status, result.duplicate, result.latency_s, redeliveries, waited)
            )
            unfinished -= 1
            if not unfinished:
                finished.set()

    workers = [asyncio.create_task(worker()) for _ in range(max(1, concurrency))]
    waiter = asyncio.create_task(finished.wait())
    try:
        await asyncio.wait([waiter, *workers], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, *workers):
            task.cancel()
        outcomes = await asyncio.gather(waiter, *workers, return_exceptions=True)
    for outcome in outcomes:  # a worker that failed (not one cancelled here) fails the run
        if isinstance(outcome, Exception):
            raise outcome


async def create_payment(
    session: aiohttp.ClientSession, base_url: str, provider: str, amount: int, currency: str
) -> str:
    """A real payment through the API, so the webhook names a payment that exists."""
    payload: dict[str, Any] = {
        "provider": provider,
        "amount": amount,
        "currency": currency,
        "description": "tenrusl simulate",
    }
    async with session.post(f"{base_url}/api/v1/payments", json=payload) as resp:
        body = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"creating a {provider} payment failed: HTTP {resp.status} {body}")
        return body["data"]["provider_ref"]


async def payment_status(
    session: aiohttp.ClientSession, base_url: str, provider: str, ref: str
) -> str | None:
    async with session.get(f"{base_url}/api/v1/payments/{provider}/{quote(ref)}/status") as resp:
        if resp.status != 200:
            return None
        return (await resp.json())["data"]["status"]
