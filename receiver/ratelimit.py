"""Per-provider webhook rate limits: fixed windows per second and per minute (docs/providers-ops.md).

Counting happens in Redis so that every replica shares one budget, but not one round trip per
request: a replica takes a *lease* of several requests from Redis at once (one atomic script
that adds them to every window's counter, granting only what is left), spends it in process,
and takes the next when it runs out. Every admitted request was counted in Redis first, so the
replicas together never admit more than the limit; a lease grows while it is used up quickly
(up to ``MAX_LEASE``) and never takes more than a quarter of what is left of a window, so near
the limit leases shrink to one request and each decision is again exact. What a replica leased
and did not use is returned to the minute window when its second ends; what is left at a
minute's end is lost, so across R replicas the cluster may admit up to R leases fewer than the
limit in a window, never more.

When Redis is unreachable the limiter falls back to an in-process counter (each replica then
enforces the limit on its own), and a short circuit breaker keeps requests from waiting on a
dead Redis. The window arithmetic is pure (``decide``, ``LocalCounter``, ``Lease``) and takes
the clock as an argument, so it is tested without sleeping.
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
MAX_LEASE = 64  # requests one lease may hold: one Redis call per this many requests at most
LEASE_SHARE = 4  # a lease takes at most 1/LEASE_SHARE of what is left of a window
LEASE_FAST_S = 0.25  # a lease used up within this long is doubled next time; else halved


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


# Take a lease of up to ARGV[1] requests from every window at once. Per key, ARGV holds (ttl ms,
# limit, refund): the refund (tokens this replica leased earlier in this window and did not use)
# is given back first. The grant is what every window can spare, capped at 1/LEASE_SHARE of what
# is left; 0 means over the limit, and then nothing is added. Returns {grant, count...}.
_LEASE_SCRIPT = """
local grant = tonumber(ARGV[1])
local counts = {}
for i, key in ipairs(KEYS) do
  local base = 1 + (i - 1) * 3
  local limit, refund = tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
  local count = tonumber(redis.call('GET', key) or '0')
  if refund > 0 and count > 0 then
    count = redis.call('DECRBY', key, math.min(refund, count))
  end
  counts[i] = count
  local free = limit - count
  grant = math.min(grant, free, math.max(1, math.floor(free / SHARE)))
end
if grant < 1 then
  grant = 0
else
  for i, key in ipairs(KEYS) do
    counts[i] = redis.call('INCRBY', key, grant)
    if redis.call('PTTL', key) < 0 then redis.call('PEXPIRE', key, ARGV[1 + (i - 1) * 3 + 1]) end
  end
end
table.insert(counts, 1, grant)
return counts
""".replace("SHARE", str(LEASE_SHARE))


class Lease:
    """Requests leased from Redis for one bucket and one pair of windows, spent in process.

    ``counts`` are the windows' Redis counters when the lease was taken (this lease included);
    the requests admitted so far, as far as this replica knows, are ``counts - tokens``.
    """

    __slots__ = ("blocked_until", "counts", "indexes", "size", "taken_at", "tokens")

    def __init__(self) -> None:
        self.indexes: tuple[int, ...] = ()
        self.counts: list[int] = []
        self.tokens = 0
        self.size = 1  # the next lease asks for this many
        self.taken_at = 0.0
        self.blocked_until = 0.0  # over a limit until then (Unix s): refuse without asking Redis

    def take(self, indexes: tuple[int, ...]) -> list[int] | None:
        """The window counts with this request admitted, or None when a new lease is needed."""
        if indexes != self.indexes or self.tokens <= 0:
            return None
        self.tokens -= 1
        return [c - self.tokens for c in self.counts]

    def refunds(self, indexes: tuple[int, ...]) -> list[int]:
        """Per window, the unused tokens that can go back: only to a window still current."""
        if not self.indexes or self.tokens <= 0:
            return [0] * len(indexes)
        return [self.tokens if old == new else 0 for old, new in zip(self.indexes, indexes, strict=True)]

    def next_size(self, now: float) -> int:
        """Double while leases run out fast, halve while they do not (1..MAX_LEASE)."""
        if self.indexes and self.tokens <= 0 and now - self.taken_at < LEASE_FAST_S:
            self.size = min(MAX_LEASE, self.size * 2)
        else:
            self.size = max(1, self.size // 2)
        return self.size

    def renew(self, indexes: tuple[int, ...], grant: int, counts: list[int], now: float) -> None:
        self.indexes, self.counts, self.tokens, self.taken_at = indexes, counts, grant, now


def redis_keys(bucket: str, windows: Sequence[Window], now: float) -> list[str]:
    # The {bucket} hash tag keeps one bucket's keys in one Redis Cluster slot (one script call).
    return [f"{KEY_PREFIX}{{{bucket}}}:{w.name}:{window_index(now, w.size_s)}" for w in windows]


class RateLimiter:
    """Redis-backed limiter with an in-process fallback and a circuit breaker."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.key_by = settings.rate_key_by
        self.default, self.overrides = parse_limits(settings)
        self.local = LocalCounter()
        self.leases: dict[str, Lease] = {}
        self._renewing: dict[str, asyncio.Future[None]] = {}
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
        self._script = client.register_script(_LEASE_SCRIPT) if client is not None else None
        self.leases.clear()
        self._set_backend("redis" if client is not None else "local")

    def limits_for(self, provider: str) -> Limits:
        return self.overrides.get(provider, self.default)

    async def check(self, provider: str, ip: str | None, now: float | None = None) -> Decision:
        now = self.clock() if now is None else now
        windows = self.limits_for(provider).windows
        bucket = bucket_key(self.key_by, provider, ip)
        counts = await self._leased(bucket, windows, now)
        if counts is None:
            counts = self.local.hit(bucket, windows, now)
        return decide(windows, counts, now)

    async def _leased(self, bucket: str, windows: Sequence[Window], now: float) -> list[int] | None:
        """This request's window counts from the bucket's lease (renewed from Redis when spent);
        None when Redis is not in use or not reachable."""
        if self._script is None:
            return None
        lease = self.leases.get(bucket)
        if lease is None:
            if len(self.leases) > LocalCounter.MAX_KEYS:
                self.leases.clear()  # bounds memory under a flood of distinct client IPs
            lease = self.leases[bucket] = Lease()
        indexes = tuple(window_index(now, w.size_s) for w in windows)
        # Ends: every pass takes a token, or waits for a Redis call that grants at least one
        # token, finds the window full, or fails (then the local counter decides).
        while True:
            counts = lease.take(indexes)
            if counts is not None:
                return counts
            if now < lease.blocked_until:  # over a limit: it stays so until that window ends
                lease.counts = [c + 1 for c in lease.counts]
                return list(lease.counts)
            renewing = self._renewing.get(bucket)
            if renewing is not None:  # one Redis call per bucket at a time; the others wait for it
                await asyncio.shield(renewing)
                continue
            future = self._renewing[bucket] = asyncio.get_running_loop().create_future()
            try:
                over = await self._renew(lease, bucket, windows, indexes, now)
            finally:
                del self._renewing[bucket]
                future.set_result(None)
            if over is not None:
                return over
            if lease.indexes != indexes:  # Redis failed: the local counter decides
                return None

    async def _renew(
        self, lease: Lease, bucket: str, windows: Sequence[Window], indexes: tuple[int, ...], now: float
    ) -> list[int] | None:
        """Take a new lease; returns the counts of a refused request when a window is full."""
        want = lease.next_size(now)
        args: list[int] = [want]
        for window, refund in zip(windows, lease.refunds(indexes), strict=True):
            args += [window.size_s * 1000 + 1000, window.limit, refund]
        reply = await self._call_redis(redis_keys(bucket, windows, now), args)
        if reply is None:
            lease.renew((), 0, [], now)
            return None
        grant, counts = reply[0], reply[1:]
        if grant > 0:
            lease.renew(indexes, grant, counts, now)
            return None
        lease.renew(indexes, 0, counts, now)
        full = [w for w, c in zip(windows, counts, strict=True) if c >= w.limit]
        lease.blocked_until = max(window_reset(now, w.size_s) for w in full) if full else now
        lease.counts = [c + 1 for c in counts]
        return list(lease.counts)

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

    async def _call_redis(self, keys: list[str], args: list[int]) -> list[int] | None:
        if self._script is None or time.monotonic() < self._open_until:
            return None
        try:
            async with asyncio.timeout(REDIS_TIMEOUT_S):
                reply = await self._script(keys=keys, args=args)
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
        return [int(c) for c in reply]

    def _set_backend(self, backend: str) -> None:
        for name in ("redis", "local"):
            self.backend.labels(name).set(1 if name == backend else 0)
