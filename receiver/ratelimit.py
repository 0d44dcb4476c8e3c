"""Per-provider webhook rate limits: fixed windows per second and per minute (docs/providers-ops.md).

Counting happens in Redis so that every replica shares one budget; when Redis is unreachable the
limiter falls back to an in-process counter (each replica then enforces the limit on its own),
and a short circuit breaker keeps requests from waiting on a dead Redis. The window arithmetic
is pure (``decide``, ``LocalCounter``) and takes the clock as an argument, so it is tested
without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Gauge
from redis.exceptions import RedisError

from receiver.errors import ApiError
from tenrusl.settings import Settings, SettingsError

log = logging.getLogger("tenrusl.ratelimit")

KEY_PREFIX = "tenrusl:rl:"
OVERRIDES_ENV = "TENRUSL_WEBHOOK_RATE_LIMIT_PROVIDERS_JSON"
REDIS_TIMEOUT_S = 0.25  # a limiter that waits longer than this costs more than it protects
BREAKER_OPEN_S = 5.0  # after a Redis failure, stay on the local counter this long before retrying


@dataclass(frozen=True)
class Window:
    name: str  # "s" or "m": part of the Redis key
    size_s: int
    limit: int


@dataclass(frozen=True)
class Limits:
    per_second: int
    per_minute: int

    @property
    def windows(self) -> tuple[Window, Window]:
        return Window("s", 1, self.per_second), Window("m", 60, self.per_minute)


@dataclass(frozen=True)
class Decision:
    """The outcome for one request, in the terms the response headers need."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # Unix seconds when the reported window starts over
    retry_after_s: int  # 0 when allowed

    def headers(self) -> dict[str, str]:
        headers = {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining)}
        if not self.allowed:
            headers["X-RateLimit-Reset"] = str(self.reset_at)
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


def window_index(now: float, size_s: int) -> int:
    return int(now // size_s)


def window_reset(now: float, size_s: int) -> int:
    """When the window holding ``now`` ends (Unix seconds)."""
    return (window_index(now, size_s) + 1) * size_s


def decide(windows: Sequence[Window], counts: Sequence[int], now: float) -> Decision:
    """Allowed when every window's count (this request included) is within its limit.

    Rejected: the headers describe the exceeded window that frees up last, so Retry-After is
    honest. Allowed: they describe the window closest to exhaustion (ties go to the longer one).
    """
    exceeded = [(w, c) for w, c in zip(windows, counts, strict=True) if c > w.limit]
    if exceeded:
        window, _ = max(exceeded, key=lambda wc: window_reset(now, wc[0].size_s))
        reset_at = window_reset(now, window.size_s)
        return Decision(False, window.limit, 0, reset_at, max(1, math.ceil(reset_at - now)))
    window, count = min(
        zip(windows, counts, strict=True), key=lambda wc: (wc[0].limit - wc[1], -wc[0].size_s)
    )
    return Decision(True, window.limit, window.limit - count, window_reset(now, window.size_s), 0)


def bucket_key(key_by: str, provider: str, ip: str | None) -> str:
    """The quota's name: per provider, per client IP, or both (the default)."""
    if key_by == "provider" or (key_by == "ip" and not ip):
        return f"provider:{provider}"
    if key_by == "ip":
        return f"ip:{ip}"
    return f"provider:{provider}|ip:{ip or '-'}"


def parse_limits(settings: Settings) -> tuple[Limits, dict[str, Limits]]:
    """Defaults plus per-provider overrides; a malformed override stops start-up."""
    default = Limits(settings.rate_per_second, settings.rate_per_minute)
    overrides: dict[str, Limits] = {}
    for name, entry in settings.rate_overrides.items():
        if not isinstance(entry, Mapping):
            raise SettingsError(f"{OVERRIDES_ENV}[{name!r}] must be an object with per_second/per_minute")
        values = {}
        for field in ("per_second", "per_minute"):
            value = entry.get(field, getattr(default, field))
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SettingsError(f"{OVERRIDES_ENV}[{name!r}].{field} must be a number")
            values[field] = max(1, int(value))
        overrides[str(name).strip().lower()] = Limits(**values)
    return default, overrides


class LocalCounter:
    """In-process fixed windows: the fallback when Redis is down (and the only one without Redis)."""

    MAX_KEYS = 50_000  # bounds memory under a flood of distinct client IPs

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}

    def hit(self, bucket: str, windows: Sequence[Window], now: float) -> list[int]:
        if len(self._counts) > self.MAX_KEYS:
            self._prune(now)
        counts = []
        for w in windows:
            index = window_index(now, w.size_s)
            seen_index, count = self._counts.get((bucket, w.name), (index, 0))
            count = count + 1 if seen_index == index else 1
            self._counts[(bucket, w.name)] = (index, count)
            counts.append(count)
        return counts

    def _prune(self, now: float) -> None:
        current = {"s": window_index(now, 1), "m": window_index(now, 60)}
        self._counts = {k: v for k, v in self._counts.items() if v[0] == current.get(k[1])}


# INCR every window key; a new key gets its TTL in the same atomic call.
_HIT_SCRIPT = """
local counts = {}
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('PEXPIRE', key, ARGV[i]) end
  counts[i] = n
end
return counts
"""


def redis_keys(bucket: str, windows: Sequence[Window], now: float) -> list[str]:
    # The {bucket} hash tag keeps one bucket's keys in one Redis Cluster slot (one script call).
    return [f"{KEY_PREFIX}{{{bucket}}}:{w.name}:{window_index(now, w.size_s)}" for w in windows]


class RateLimiter:
    """Redis-backed limiter with an in-process fallback and a circuit breaker."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.key_by = settings.rate_key_by
        self.default, self.overrides = parse_limits(settings)
        self.local = LocalCounter()
        self.redis: aioredis.Redis | None = None
        self._script: Any = None
        self.clock: Callable[[], float] = time.time  # tests pin it, so no window boundary is crossed
        self.breaker_open_s = BREAKER_OPEN_S
        self._open_until = 0.0  # monotonic time until which Redis is not tried
        self._degraded = False
        self.backend = Gauge(
            "tenrusl_rate_limit_backend",
            "1 for the rate-limit backend in use (redis, or local when Redis is absent or down).",
            ["backend"],
            registry=registry,
            multiprocess_mode="livemax",  # with workers: 1 when any live worker uses that backend
        )
        self._set_backend("local")

    def attach(self, client: aioredis.Redis | None) -> None:
        self.redis = client
        self._script = client.register_script(_HIT_SCRIPT) if client is not None else None
        self._set_backend("redis" if client is not None else "local")

    def limits_for(self, provider: str) -> Limits:
        return self.overrides.get(provider, self.default)

    async def check(self, provider: str, ip: str | None, now: float | None = None) -> Decision:
        now = self.clock() if now is None else now
        windows = self.limits_for(provider).windows
        bucket = bucket_key(self.key_by, provider, ip)
        counts = await self._redis_hit(bucket, windows, now)
        if counts is None:
            counts = self.local.hit(bucket, windows, now)
        return decide(windows, counts, now)

    async def enforce(self, provider: str, ip: str | None) -> dict[str, str]:
        """The X-RateLimit-* headers for an allowed request; raises 429 for one over the limit."""
        decision = await self.check(provider, ip)
        if not decision.allowed:
            raise ApiError(
                429,
                "rate_limited",
                f"Too many webhook deliveries; retry after {decision.retry_after_s} s.",
                headers=decision.headers(),
            )
        return decision.headers()

    async def _redis_hit(self, bucket: str, windows: Sequence[Window], now: float) -> list[int] | None:
        if self._script is None or time.monotonic() < self._open_until:
            return None
        keys = redis_keys(bucket, windows, now)
        ttls = [w.size_s * 1000 + 1000 for w in windows]
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                counts = await self._script(keys=keys, args=ttls)
        except (RedisError, OSError, TimeoutError) as exc:
            self._open_until = time.monotonic() + self.breaker_open_s
            if not self._degraded:
                self._degraded = True
                self._set_backend("local")
                log.warning(
                    "rate limiter falling back to in-process counting",
                    extra={"action": "rate_limit_fallback", "error": exc.__class__.__name__},
                )
            return None
        if self._degraded:
            self._degraded = False
            self._set_backend("redis")
            log.info("rate limiter back on redis", extra={"action": "rate_limit_recovered"})
        return [int(c) for c in counts]

    def _set_backend(self, backend: str) -> None:
        for name in ("redis", "local"):
            self.backend.labels(name).set(1 if name == backend else 0)
