"""The run lock: at most one retry run at a time, with Redis first and PostgreSQL as fallback.

Redis: ``SET tenrusl:retry:run-lock <run id> NX PX <ttl>``; release deletes the key only if it
still holds our token (a Lua compare-and-delete), so a run that outlived its TTL never frees a
lock that another run took since. The TTL is short (60 s) and renewed every 20 s while the run
lives (a compare-and-pexpire), so the lock never lapses under a live run, yet a SIGKILLed run
blocks the next ones for at most a minute instead of a whole run budget.

When Redis cannot be reached (no URL, connection refused, ~1 s timeout) the run takes
``pg_try_advisory_lock(RETRY_RUN_LOCK_KEY)`` on a connection of its own,
held for the whole run; PostgreSQL drops it when that session ends, even after SIGKILL.

The lock only keeps runs from overlapping. Correctness never depends on it: the claim's
``FOR UPDATE SKIP LOCKED`` already guarantees that two runners never take the same event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tenrusl.constants import RETRY_RUN_LOCK_KEY
from tenrusl.db import Connection, connect
from tenrusl.settings import Settings
from tenrusl.sql import queries

log = logging.getLogger("tenrusl.retry.lock")

REDIS_LOCK_KEY = "tenrusl:retry:run-lock"
# Renewed every REDIS_RENEW_S while the run lives, so it outlasts any run; a run that dies holding
# it blocks the next CronJob runs for at most this long (`tenrusl retry unlock` frees it at once).
REDIS_LOCK_TTL_MS = 60 * 1000
REDIS_RENEW_S = 20.0
# How long to wait for Redis before falling back: a dead Redis must not stall the CronJob.
REDIS_TIMEOUT_S = 1.0

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

REDIS = "redis"
ADVISORY = "pg_advisory"


def redis_client(url: str) -> aioredis.Redis:
    return aioredis.from_url(
        url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S, retry_on_timeout=False
    )


class RunLock:
    """``backend = await lock.acquire()``: ``redis``/``pg_advisory`` when held, None when busy.

    Raises DatabaseUnavailable only when Redis is down *and* PostgreSQL cannot be reached.
    """

    def __init__(self, settings: Settings, token: str, ttl_ms: int = REDIS_LOCK_TTL_MS) -> None:
        self.settings = settings
        self.token = token
        self.ttl_ms = ttl_ms
        self.backend: str | None = None
        self._redis: aioredis.Redis | None = None
        self._conn: Connection | None = None
        self._renewer: asyncio.Task[None] | None = None

    async def acquire(self) -> str | None:
        if self.settings.redis_url:
            client = redis_client(self.settings.redis_url)
            try:
                taken = await client.set(REDIS_LOCK_KEY, self.token, nx=True, px=self.ttl_ms)
            except (RedisError, OSError) as exc:
                await client.aclose()
                log.warning(
                    "redis unavailable for the run lock; using the PostgreSQL advisory lock",
                    extra={"action": "run_lock", "error": f"{exc.__class__.__name__}: {exc}"},
                )
            else:
                if not taken:
                    await client.aclose()
                    return None
                self._redis = client
                self.backend = REDIS
                self._renewer = asyncio.create_task(self._renew(client), name="tenrusl-run-lock-renew")
                return REDIS
        return await self._acquire_advisory()

    async def _acquire_advisory(self) -> str | None:
        conn = await connect(self.settings)
        cur = await conn.execute(queries["try_retry_run_lock"], {"key": RETRY_RUN_LOCK_KEY})
        row = await cur.fetchone()
        if not row or not row["taken"]:
            await conn.close()
            return None
        self._conn = conn
        self.backend = ADVISORY
        return ADVISORY

    async def _renew(self, client: aioredis.Redis) -> None:
        """Keep the TTL ahead of the run; losing Redis mid-run is logged, never fatal."""
        while True:
            await asyncio.sleep(min(REDIS_RENEW_S, self.ttl_ms / 3000))
            try:
                held = await client.eval(_RENEW, 1, REDIS_LOCK_KEY, self.token, str(self.ttl_ms))
            except (RedisError, OSError) as exc:
                log.warning(
                    "could not renew the redis run lock",
                    extra={"action": "run_lock", "error": exc.__class__.__name__},
                )
                continue
            if not held:
                log.warning("the redis run lock was lost (expired or unlocked)", extra={"action": "run_lock"})
                return

    async def release(self) -> None:
        """Best effort: a lock we cannot release expires (Redis TTL) or dies with its session."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
            self._renewer = None
        if self._redis is not None:
            try:
                await self._redis.eval(_RELEASE, 1, REDIS_LOCK_KEY, self.token)
            except (RedisError, OSError) as exc:
                log.warning(
                    "could not release the redis run lock; it expires by itself",
                    extra={"action": "run_lock", "error": exc.__class__.__name__},
                )
            finally:
                await self._redis.aclose()
                self._redis = None
        if self._conn is not None:
            try:
                await self._conn.close()  # ends the session, which drops the advisory lock
            finally:
                self._conn = None


async def force_unlock(settings: Settings) -> str | None:
    """Delete the Redis lock whoever holds it; returns the token that was there (or None)."""
    if not settings.redis_url:
        return None
    client = redis_client(settings.redis_url)
    try:
        holder = await client.get(REDIS_LOCK_KEY)
        await client.delete(REDIS_LOCK_KEY)
        return holder.decode() if isinstance(holder, bytes) else holder
    finally:
        await client.aclose()
